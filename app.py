"""GPU pipeline planner: Streamlit dashboard (main page).

The state is the scenario's file texts (config.csv, gpu_pool.csv, network file); every widget edit is
written back into them and parsed by planner.scenario_from_texts. Solves are cached on the texts.
"""
import streamlit as st

from ui import inputs, results, solver, state
from ui import scenario_texts as T

BIG_PROBLEM_OPTIONS = 10_000  # above this many stage options, solve only on request

st.set_page_config(page_title="GPU pipeline planner", page_icon="🧮", layout="wide")

state.ensure()
state.process_uploads()
state.process_pick()
state.prepare()
s = st.session_state

with st.sidebar:
    inputs.scenario_source()

st.title("GPU pipeline planner")
st.caption("Place an LLM's layers on a mixed GPU pool at the lowest $ per token (pipeline stages × tensor "
           "parallelism, MILP solved with HiGHS).")

tab_work, tab_pool, tab_search = st.tabs(["Workload & model", "GPU pool & network", "Search settings"])
with tab_work:
    inputs.workload_and_model()
with tab_pool:
    inputs.pool_and_network()
with tab_search:
    preview_box = inputs.search_settings()

texts = state.rebuild_texts()
key = T.texts_key(texts)
name = s["scenario_name"]
ckey = state.cat_key()
sc, err = state.current_scenario()
inputs.problem_size_preview(preview_box, solver.candidates(key, name, ckey) if sc else err,
                            solver.sizes_for(key, name, ckey) if sc else ())
if sc is not None and sc.warnings:
    with st.expander(f"Loading notes ({len(sc.warnings)}): what the loader assumed or ignored"):
        st.markdown("\n".join(f"- {w}" for w in sc.warnings))

st.header("Result")
method = s["method"]
last = s.get("last_good")


def show_last(reason: str) -> None:
    if last is not None:
        results.render(last["outcome"], last["exact"], last["scenario"], last["name"],
                       stale=f"{reason} Result shown: scenario '{last['name']}'.")


if err is not None:
    results.show_error(err)
    show_last("Showing the last valid result (before the invalid edit); fix the problems above to re-solve.")
elif not s.get("solve_button") and not s.get("auto_solve", True):
    st.info("Automatic solving is off: press **Solve now** in the sidebar.", icon="⏸️")
    show_last("Showing the last result; the settings have changed since.")
elif (not s.get("solve_button") and (key, ckey, method) not in s.get("_solved", set())
      and not isinstance(options := solver.candidates(key, name, ckey), Exception)
      and len(options.options) > BIG_PROBLEM_OPTIONS):
    st.info(f"Large problem ({len(options.options):,} stage options): it is not solved automatically, as a solve "
            f"can take up to the time limit ({sc.settings.time_limit_s:g} s). Press **Solve now** in the sidebar.",
            icon="⏸️")
    show_last("Showing the last result; the settings have changed since.")
else:
    solved = s.setdefault("_solved", set())
    cached = (key, ckey, method) in solved
    with st.status(f"Solving {name} with the {method} method…", expanded=False) as status:
        cs = solver.candidates(key, name, ckey)
        if not isinstance(cs, Exception):
            st.write(f"{len(cs.options):,} stage options usable, {len(cs.excluded):,} excluded; "
                     f"{len(cs.levels)} concurrency level(s).")
        outcome = solver.solve(key, name, ckey, method)
        exact = outcome if method == "exact" else None
        if method != "exact":
            st.write("Exact optimum and frontier for comparison…")
            exact = solver.solve(key, name, ckey, "exact")
        for p in (outcome.result.curve if outcome.result else ()):
            tail = (f"{p.tokens_per_s:,.0f} tokens/s at ${p.cost_usd_per_hour:.2f}/h, "
                    f"${p.usd_per_million_tokens:.4f}/M tokens" if p.plan else "")
            st.write(f"budget ${p.budget_usd_per_hour:.2f}/h: {p.status} {tail}")
        solved.add((key, ckey, method))
        if outcome.error is not None:
            status.update(label=f"{method}: {type(outcome.error).__name__}", state="error")
        else:
            r = outcome.result
            status.update(label=(f"Solved ({method}): {r.status}, {r.solve_seconds + r.build_seconds:.2f} s"
                                 + (" — from cache" if cached else "")), state="complete")
    if outcome.error is not None:
        results.show_error(outcome.error)
        show_last("Showing the last result that solved.")
    else:
        s["last_good"] = {"outcome": outcome, "exact": exact, "scenario": sc, "name": name}
        results.render(outcome, exact, sc, name)
