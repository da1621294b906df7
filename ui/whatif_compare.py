"""Compare page: named scenarios kept in the session, two of them side by side (inputs that differ,
headline figures, layouts), and the whole set exported to one file and imported back.

A named scenario is its file texts, as everywhere in the app; the set file holds one
`scenario_io.scenario_texts_to_json` document per scenario, so each one is read back by the same
`scenario_texts_from_json` checks as a single exported scenario (which the import also accepts)."""
from __future__ import annotations

import json

import streamlit as st

from planner import InfeasibleError, InputError, Planner, Problem
from planner import whatif as W
from planner.scenario_io import SCENARIO_FORMAT, scenario_texts_from_json, scenario_texts_to_json

from . import results, solver, state
from . import scenario_texts as T
from . import whatif_jobs as jobs
from .text import md, md_lines
from .whatif_spot import show_layouts
from .whatif_tables import differences_frame, figures_frame, not_proven, plan_frame, table
from .whatif_view import AUTO_MAX_OPTIONS

SET_FORMAT = "gpu-pipeline-planner-scenario-set/1"
NAMED = "named_scenarios"  # session: name -> scenario texts, in the order saved
CURRENT = "(current) "


# ------------------------------------------------------------------ the set file (pure)
def set_to_json(named: dict[str, dict[str, str]]) -> str:
    return json.dumps({"format": SET_FORMAT, "scenarios": [json.loads(scenario_texts_to_json(texts, name))
                                                            for name, texts in named.items()]}, indent=1)


def read_set(data: str | bytes, file: str) -> tuple[list[tuple[str, dict[str, str]]], list[Problem]]:
    """The scenarios that could be read and the problems of the others."""
    deep = T.json_depth_problem(data if isinstance(data, bytes) else data.encode(), file)
    if deep is not None:
        return [], [deep]
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        return [], [Problem(f"not a scenario file (invalid JSON: {exc})", file)]
    if isinstance(doc, dict) and doc.get("format") == SCENARIO_FORMAT:
        try:
            return [scenario_texts_from_json(data, file)], []
        except InputError as exc:
            return [], exc.problems
    if not isinstance(doc, dict) or doc.get("format") != SET_FORMAT:
        return [], [Problem(f"not a scenario set ({SET_FORMAT}) nor a scenario file ({SCENARIO_FORMAT})", file)]
    items = doc.get("scenarios")
    if not isinstance(items, list) or not items:
        return [], [Problem("'scenarios' must be a non-empty list", file)]
    out, problems = [], []
    for i, item in enumerate(items, start=1):
        try:
            out.append(scenario_texts_from_json(json.dumps(item), f"{file}, scenario {i}"))
        except InputError as exc:
            problems.extend(exc.problems)
    names = [n for n, _ in out]
    problems += [Problem(f"scenario name '{n}' appears more than once", file) for n in sorted(set(names))
                 if names.count(n) > 1]
    return out, problems


def unique_name(name: str, taken) -> str:
    if name not in taken:
        return name
    k = 2
    while f"{name} ({k})" in taken:
        k += 1
    return f"{name} ({k})"


# ------------------------------------------------------------------ page
def render() -> None:
    s = st.session_state
    named: dict[str, dict[str, str]] = s.setdefault(NAMED, {})
    st.title("Compare scenarios")
    st.caption("Save the Planner page's current scenario under a name, edit it there, save again, and compare any "
               "two here. The named scenarios live in this browser session; export them to keep them.")
    process_import(named)
    manage(named)
    st.divider()
    compare(named)


def process_import(named: dict) -> None:
    """Load an uploaded set (before the widgets that list the names are drawn); a bad file loads nothing."""
    s = st.session_state
    files = s.get("cmp_import") or []
    ids = tuple(getattr(f, "file_id", f.name) for f in files)
    if not files:
        s["_cmp_import_done"], s["cmp_import_problems"] = None, None
        return
    if ids == s.get("_cmp_import_done"):
        return
    s["_cmp_import_done"], s["cmp_import_problems"], s["cmp_import_note"] = ids, None, None
    limit = state.upload_limit_mb() * 1024 * 1024
    loaded, problems = [], []
    for f in files:
        data = f.getvalue()
        if len(data) > limit:
            problems.append(Problem(f"{len(data) / 1048576:.1f} MB is over the upload limit of "
                                    f"{limit / 1048576:g} MB (server.maxUploadSize)", f.name))
            continue
        read, bad = read_set(data, f.name)
        problems += bad
        for name, texts in read:
            sc = solver.scenario(T.texts_key(texts), name, state.cat_key())
            if isinstance(sc, InputError):
                problems += [Problem(p.message, f"{f.name}, scenario '{name}': {p.file}", p.row, p.column)
                             for p in sc.problems]
            loaded.append((name, texts))
    if problems:
        s["cmp_import_problems"] = InputError(problems)
        return
    added = []
    for name, texts in loaded:
        if named.get(name) == texts:
            continue  # already here, unchanged
        new = unique_name(name, named)
        named[new] = texts
        added.append(new)
    s["cmp_import_note"] = (f"Imported {len(added)} scenario(s): {md(', '.join(added))}." if added else
                            "Every scenario in the file is already here, unchanged.")


def manage(named: dict) -> None:
    s = st.session_state
    st.subheader("Named scenarios")
    sc, err = state.current_scenario()
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    if not s.get("cmp_name"):
        s["cmp_name"] = unique_name(s["scenario_name"], named)
    c1.text_input("Name for the current scenario", key="cmp_name", max_chars=80)
    c2.button("Save current scenario", key="cmp_save", type="primary", width="stretch", disabled=err is not None,
              on_click=save_current, args=(named,))
    if err is not None:
        st.warning("The current edits do not parse, so they cannot be saved; fix them on the Planner page.",
                   icon=":material/warning:")
    if s.get("cmp_save_error"):
        st.error(s.pop("cmp_save_error"), icon=":material/error:")
    for k in ("cmp_saved_note", "cmp_import_note"):
        if s.get(k):
            st.success(s.pop(k), icon=":material/check_circle:")
    if named:
        rows = []
        for name, texts in named.items():
            parsed = solver.scenario(T.texts_key(texts), name, state.cat_key())
            if isinstance(parsed, InputError):
                rows.append({"name": name, "model": "does not parse", "pool": str(parsed)[:120]})
                continue
            rows.append({"name": name, "model": f"{parsed.model.name} ({parsed.model.num_layers} layers)",
                         "workload": f"{parsed.workload.input_tokens} in + {parsed.workload.output_tokens} out tokens",
                         "pool": ", ".join(f"{e.count}× {e.name} ${e.spec.price_usd_per_hour:.3f}/h"
                                           for e in parsed.pool.entries)})
        st.dataframe(rows, hide_index=True, width="stretch", placeholder="–", key="cmp_named_table")
        d1, d2 = st.columns([3, 1], vertical_alignment="bottom")
        gone = d1.multiselect("Remove", list(named), key="cmp_remove", placeholder="pick scenarios to remove")
        d2.button("Remove", key="cmp_remove_button", disabled=not gone, width="stretch", on_click=remove,
                  args=(named,))
    else:
        st.info("No named scenarios yet: save the current one, change it on the Planner page, and save again.")
    e1, e2 = st.columns([1, 2])
    e1.download_button("Export named scenarios (.json)", set_to_json(named), file_name="scenarios.json",
                       mime="application/json", key="cmp_export", on_click="ignore", disabled=not named,
                       width="stretch", help="every named scenario's files in one JSON file; import it to restore them")
    e2.file_uploader("Import named scenarios (.json: an exported set, or single scenario files)", type=["json"],
                     accept_multiple_files=True, key="cmp_import")
    if s.get("cmp_import_problems"):
        err = s["cmp_import_problems"]
        lines = md_lines(err.problems)
        st.error(f"**The import was not loaded** ({len(err.problems)} problem(s)):\n{lines}", icon=":material/error:")


def save_current(named: dict) -> None:
    """Button callback (it runs before the widgets, so it may reset the name box)."""
    s = st.session_state
    name = s["cmp_name"].strip()
    if not name or name.startswith(CURRENT.strip()):
        s["cmp_save_error"] = f"Give it a name (not starting with '{CURRENT.strip()}')."
        return
    replaced = name in named
    named[name] = dict(s["texts"])
    s["cmp_saved_note"] = f"{'Replaced' if replaced else 'Saved'} **{md(name)}**."
    s["cmp_name"] = ""  # a fresh suggestion on the next run


def remove(named: dict) -> None:
    s = st.session_state
    for name in s.get("cmp_remove", []):
        named.pop(name, None)
    s["cmp_remove"] = []


def choices(named: dict) -> dict[str, tuple[str, dict[str, str]]]:
    """Label -> (scenario name, texts): the current scenario (if it parses) and every named one."""
    s = st.session_state
    out = {}
    _, err = state.current_scenario()
    if err is None:
        out[CURRENT + s["scenario_name"]] = (s["scenario_name"], dict(s["texts"]))
    out.update({name: (name, texts) for name, texts in named.items()})
    return out


def compare(named: dict) -> None:
    s = st.session_state
    st.subheader("Side by side")
    options = choices(named)
    if len(options) < 2:
        st.info("Save at least one named scenario to compare it with the current one (or two named ones).")
        return
    labels = list(options)
    if s.get("cmp_a") not in labels:
        s["cmp_a"] = labels[1]
    if s.get("cmp_b") not in labels:
        s["cmp_b"] = labels[0]
    c1, c2 = st.columns(2)
    c1.selectbox("Scenario A", labels, key="cmp_a")
    c2.selectbox("Scenario B", labels, key="cmp_b")
    (na, ta), (nb, tb) = options[s["cmp_a"]], options[s["cmp_b"]]
    ckey = state.cat_key()
    scs = [solver.scenario(T.texts_key(t), n, ckey) for n, t in ((na, ta), (nb, tb))]
    bad = [x for x in scs if isinstance(x, InputError)]
    if bad:
        for x in bad:
            results.show_error(x)
        return
    a, b = scs
    la, lb = f"A: {s['cmp_a']}", f"B: {s['cmp_b']}"
    if T.texts_key(ta) == T.texts_key(tb):
        st.info("A and B are the same scenario (no input differs).")
    got, tasks = {}, []
    sizes = []
    for side, sc, texts in (("a", a, ta), ("b", b, tb)):
        key = (T.texts_key(texts), ckey, "exact")
        main = solver.results().get(key)
        if main is not None:
            got[side] = jobs.Done(main.result, main.error, main.seconds)
            continue
        cs = solver.candidates(key[0], sc.name, ckey)
        sizes.append(0 if isinstance(cs, InputError) else len(cs.options))
        tasks.append(jobs.Task(key, f"Exact optimum of {sc.name}", lambda c, sc=sc: Planner(sc, cancel=c).exact()))
    controls = st.container()
    side_of = {t.key: side for t, side in zip(tasks, [x for x in ("a", "b") if x not in got])}
    for task, done in jobs.run(tasks, controls, auto=max(sizes, default=0) <= AUTO_MAX_OPTIONS, ident="compare",
                               why_not_auto=f"A scenario here has more than {AUTO_MAX_OPTIONS:,} stage options."):
        got[side_of[task.key]] = done
    if len(got) < 2:
        return
    heads, reasons = [], []
    for side in ("a", "b"):
        done = got[side]
        if done.error is not None and not isinstance(done.error, InfeasibleError):
            results.show_error(done.error)
            return
        heads.append(W.Headline.of(done.value) if done.error is None else None)
        reasons.append(str(done.error) if done.error is not None else "")
    comp = W.Comparison(a.name, b.name, W.scenario_differences(a, b), *heads, *reasons)
    # Each side names itself A/B: two saved scenarios may share a scenario name.
    not_proven(W.proof([(la, comp.a), (lb, comp.b)]))
    st.markdown("**Headline figures** (each the exact optimum; change = B against A)")
    table(figures_frame(comp, la, lb), key="cmp_figures")
    st.markdown(f"**Inputs that differ** ({len(comp.differences)})")
    if comp.differences:
        table(differences_frame(comp, la, lb), key="cmp_differences")
    else:
        st.caption("None: the two scenarios have the same inputs.")
    st.markdown("**Layouts**")
    show_layouts(None, comp, (la, lb), "cmp", (a.model.num_layers, b.model.num_layers))
    cols = st.columns(2)
    for col, h, label in zip(cols, (comp.a, comp.b), (la, lb)):
        if h is not None:
            with col:
                table(plan_frame(h.plan), key=f"cmp_stages_{label}")
