"""Session state: the scenario's file texts, the editing state that is written back into them, and
loading (bundled scenario, uploaded files, imported scenario JSON) through one path."""
from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from planner import Catalog, InputError, Problem, Scenario, load_catalog

from . import cell_check
from . import keys as K
from . import scenario_texts as T
from . import solver

if TYPE_CHECKING:
    import pandas as pd  # annotations only: see ui.pool_texts

UPLOADED = "(uploaded / imported)"


def ss():
    return st.session_state


def cat_key() -> solver.TextsKey:
    return T.texts_key(st.session_state[K.CATALOG_TEXTS])


def catalog() -> Catalog:
    """The session's catalogue (edited on the catalogue page), or the bundled one if the edit is invalid."""
    cat = solver.catalog_from_texts(cat_key())
    return load_catalog() if isinstance(cat, InputError) else cat


def ensure(widgets: bool = False) -> None:
    """Initialise the state on first open (default scenario, no action needed). With `widgets` (the
    Planner page only, before its widgets are drawn) also re-assign the Planner's widget values, which
    Streamlit drops while another page is shown; setting them from another page would make Streamlit
    draw the Planner's widgets with their defaults on the way back."""
    s = st.session_state
    if K.CATALOG_TEXTS not in s:
        s[K.CATALOG_TEXTS] = T.bundled_catalog_texts()
    if K.BASE_TEXTS not in s:
        # ?scenario=<bundled folder> in the address opens on that scenario (a link to share; tests use it)
        asked = st.query_params.get("scenario", "")
        first = asked if asked in T.bundled_names() else T.DEFAULT_SCENARIO
        load(T.load_bundled_texts(first), first, pick=first)
    if not widgets:
        return
    s[K.SCENARIO_PICK] = s.get(K.SCENARIO_PICK, s[K.LOADED_PICK])
    for k in T.WIDGET_KEYS:
        s[k] = s.get(k, s[K.VALUES][k])
    for k in K.TOGGLES:  # kept (as _k) while other pages are shown
        s[k] = s.get(k, s.get(K.kept(k), True))


def load(texts: dict[str, str], name: str, pick: str = UPLOADED) -> None:
    """Make `texts` the loaded scenario: widgets and editors are reset to what it implies.
    Must run before the editing widgets are created in the current run."""
    s = st.session_state
    cat = catalog()
    key = T.texts_key(texts)
    sc = solver.scenario(key, name, cat_key())
    if isinstance(sc, Scenario):
        sizes = solver.sizes_for(key, name, cat_key())
        sizes = () if isinstance(sizes, InputError) else sizes
        values = T.values_from_scenario(sc, texts.get(T.CONFIG, ""), cat, sizes)
        pool = T.pool_frame(sc, texts.get(T.POOL, ""))
        links = T.scenario_links(sc)
        default = sc.pool.default_link_gb_per_s
    else:
        values = T.default_values(cat)
        pool = T.pool_frame(None, texts.get(T.POOL, ""))
        links = {}
        try:
            default = float(T.config_dict(texts.get(T.CONFIG, "")).get("inter_node_gb_per_s", 25.0))
        except ValueError:
            default = 25.0
    s[K.BASE_TEXTS] = dict(texts)
    s[K.TEXTS] = dict(texts)
    s[K.SCENARIO_NAME] = name
    s[K.LOADED_PICK] = pick
    s[K.BASE_VALUES] = dict(values)
    s[K.VALUES] = dict(values)
    for k in T.WIDGET_KEYS:
        s[k] = values[k]
    s[K.BASE_POOL] = pool
    s[K.POOL] = pool.copy()
    s[K.BASE_LINKS] = links
    s[K.NET_DEFAULT] = default
    s[K.NET] = T.net_frame(T.pool_types(pool), links, default)
    for name_ in ("pool", "net"):
        s[K.version(name_)] = s.get(K.version(name_), 0) + 1
    s[K.LOAD_COUNT] = s.get(K.LOAD_COUNT, 0) + 1


def sync_editor(name: str) -> None:
    """Fold what the user typed into `name`'s editor into st.session_state[name] (call before reading it).

    The editor's edit state is relative to the frame it was mounted with, so it is applied to that frame;
    an editor mounted before a reload or reset (whose version is older) is ignored."""
    s = st.session_state
    mounted = s.get(K.grid(name))
    if mounted is None or mounted[0] != s.get(K.version(name), 0):
        return
    delta = s.get(mounted[1])
    if isinstance(delta, dict):
        s[name] = T.apply_delta(mounted[2], delta)


def stable_editor(name: str, view: str = "", **kwargs):
    """A st.data_editor over st.session_state[name] that keeps its key and data while the user types.

    A changing key or data remounts the grid and loses the focus after every cell (each edit reruns the
    script), so the grid keeps the frame it was mounted with and edits flow into st.session_state[name]
    through `sync_editor`. It is remounted, from the frame with every edit in it, when the frame is
    reloaded or reset (its version `_{name}_ver` changes), when `view` (e.g. which columns are shown)
    changes, and after a page switch (Streamlit drops the grid's state). The key is in
    st.session_state[K.editor_key(name)]."""
    s = st.session_state
    sync_editor(name)
    ver = s.get(K.version(name), 0)
    key = f"{name}_grid_{ver}{'_' + view if view else ''}"
    mounted = s.get(K.grid(name))
    if mounted is None or mounted[1] != key or key not in s:
        mounted = (ver, key, s[name].copy())
        s[K.grid(name)] = mounted
    s[K.editor_key(name)] = key
    return st.data_editor(mounted[2], key=key, **kwargs)


def folded_editor(name: str, **kwargs) -> pd.DataFrame:
    """A st.data_editor over st.session_state[name] whose edits are folded into that frame on the next
    run (then the editor starts afresh under a new key), so edits survive page switches.
    The current editor key is in st.session_state[K.editor_key(name)]."""
    s = st.session_state
    fold_pending(name)
    key = f"{name}_editor_{s.get(K.version(name), 0)}"
    s[K.editor_key(name)] = key
    return st.data_editor(s[name], key=key, **kwargs)


def fold_pending(name: str) -> bool:
    s = st.session_state
    ver = s.get(K.version(name), 0)
    key = f"{name}_editor_{ver}"
    delta = s.get(key)
    if isinstance(delta, dict) and (delta.get("edited_rows") or delta.get("added_rows") or delta.get("deleted_rows")):
        s[name] = T.apply_delta(s[name], delta)
        s[K.version(name)] = ver + 1
        return True
    return False


def reconcile_net() -> None:
    """Keep the network table's rows = the type pairs of the current pool (values kept where known)."""
    s = st.session_state
    types = T.pool_types(s[K.POOL])
    current = {(r.gpu_type_a, r.gpu_type_b): r.gb_per_s for r in s[K.NET].itertuples()}
    want = T.type_pairs(types)
    if [tuple(p) for p in want] != list(current):
        values = {**s[K.BASE_LINKS], **current}
        s[K.NET] = T.net_frame(types, values, s[K.NET_DEFAULT])
        s[K.version(K.NET)] = s.get(K.version(K.NET), 0) + 1


def widget_values() -> dict:
    s = st.session_state
    return {k: s.get(k, s[K.VALUES][k]) for k in T.WIDGET_KEYS}


def rebuild_texts() -> dict[str, str]:
    """The current texts from the loaded texts + the editing state; stored in st.session_state.texts."""
    s = st.session_state
    values = widget_values()
    s[K.VALUES] = values
    s[K.TEXTS] = _build(values)
    return s[K.TEXTS]


def _build(values: dict) -> dict[str, str]:
    """The scenario texts for these widget values (over the loaded texts and the edited grids)."""
    s = st.session_state
    return T.build_texts(s[K.BASE_TEXTS], s[K.BASE_VALUES], values, s[K.BASE_POOL], s[K.POOL], s[K.BASE_LINKS],
                         s[K.NET])


def _sized(values: dict) -> dict | None:
    """`values` with the segment-size list their quantization implies (as they are with custom sizes);
    None if the texts they give imply no sizes."""
    if values.get(K.CUSTOM_SIZES):
        return values
    sizes = solver.sizes_for(T.texts_key(_build(values)), st.session_state[K.SCENARIO_NAME], cat_key())
    if isinstance(sizes, InputError):
        return None
    return {**values, "segment_sizes_text": T.list_text(sizes)}


def texts_with(**changes) -> dict[str, str] | None:
    """The texts the current inputs would give with some widget values changed, built exactly as
    `prepare` builds them (so their cache keys match); None if they imply no segment sizes."""
    values = _sized(dict(widget_values(), **changes))
    return None if values is None else _build(values)


def prepare() -> dict[str, str]:
    """Before the widgets are drawn: fold the grids' edits (`stable_editor`), keep the network table in step with the
    pool, rebuild the texts, and show the segment-size set the quantization implies."""
    s = st.session_state
    sync_editor("net")
    sync_editor("pool")
    reconcile_net()
    values = _sized(widget_values())
    if values is not None and not values.get(K.CUSTOM_SIZES):
        s[K.SEGMENT_SIZES_TEXT] = values[K.SEGMENT_SIZES_TEXT]
    return rebuild_texts()


def fill_pool_from_catalogue() -> None:
    """Button callback: the pool's empty datasheet cells get the catalogue's values, shown in the table."""
    s = st.session_state
    sync_editor("pool")
    s[K.POOL], s[K.POOL_FILLED] = cell_check.fill_from_catalogue(s[K.POOL], catalog())
    s[K.version(K.POOL)] = s.get(K.version(K.POOL), 0) + 1


def pool_cell_problems():
    """The pool table's empty or invalid cells (ui.cell_check): each one is an error, never a silent
    fall-back to the catalogue."""
    return cell_check.pool_cell_problems(st.session_state[K.POOL], catalog())


def current_scenario() -> tuple[Scenario | None, InputError | None]:
    s = st.session_state
    cells = pool_cell_problems()
    s[K.POOL_MARKS] = cells
    if cells:
        return None, cell_check.as_input_error(cells, s[K.POOL])
    sc = solver.scenario(T.texts_key(s[K.TEXTS]), s[K.SCENARIO_NAME], cat_key())
    if isinstance(sc, InputError):
        cells, others = cell_check.from_library(sc, s[K.POOL])
        if cells:  # said in the table's terms (row as shown, column header), and marked in the table
            s[K.POOL_MARKS] = cells
            return None, cell_check.as_input_error(cells, s[K.POOL], others)
        return None, sc
    return sc, None


def last_good_scenario() -> Scenario | None:
    """The current scenario if it parses, else the last one that did."""
    sc, _ = current_scenario()
    if sc is not None:
        st.session_state[K.LAST_GOOD_SCENARIO] = sc
        return sc
    return st.session_state.get(K.LAST_GOOD_SCENARIO)


def upload_limit_mb() -> int:
    """The upload size limit: server.maxUploadSize (.streamlit/config.toml), which the browser enforces
    too; checked here again for clients that bypass it."""
    return int(st.get_option("server.maxUploadSize"))


def process_uploads() -> None:
    """Load newly uploaded files (before the widgets are created). An upload is loaded only if the
    scenario it makes parses; otherwise every problem is kept for display and the current scenario,
    with the user's edits, stays."""
    s = st.session_state
    files = s.get(K.UPLOAD) or []
    if not files:  # the uploader was cleared: forget its problems, accept the same files again later
        s[K.UPLOAD_DONE] = None
        s[K.UPLOAD_PROBLEMS] = None
        return
    ids = tuple(getattr(f, "file_id", f.name) for f in files)
    if ids == s.get(K.UPLOAD_DONE):
        return
    s[K.UPLOAD_DONE] = ids
    s[K.UPLOAD_PROBLEMS] = None
    try:
        payload = [(f.name, f.getvalue()) for f in files]
        name, texts = T.texts_from_uploads(payload, s[K.TEXTS], max_bytes=upload_limit_mb() * 1024 * 1024)
        missing = [Problem(f"missing {required}: upload it together with the other files", required)
                   for required in (T.CONFIG, T.POOL) if required not in texts]
        if missing:
            raise InputError(missing)
        if name is None:
            names = [f.name for f in files]
            name = "uploaded" if len(names) > 1 else f"{s[K.SCENARIO_NAME]} + {names[0]}"
        parsed = solver.scenario(T.texts_key(texts), name, cat_key())
        if isinstance(parsed, InputError):
            raise parsed
    except InputError as exc:
        s[K.UPLOAD_PROBLEMS] = exc
        return
    except (RecursionError, ValueError, csv.Error) as exc:  # a parse the checks above did not foresee
        names = ", ".join(f.name for f in files)
        s[K.UPLOAD_PROBLEMS] = InputError(Problem(f"could not be read ({type(exc).__name__}: {exc})", names))
        return
    load(texts, name, pick=UPLOADED)
    s[K.SCENARIO_PICK] = UPLOADED


def process_pick() -> None:
    s = st.session_state
    pick = s.get(K.SCENARIO_PICK)
    if pick and pick != s.get(K.LOADED_PICK) and pick != UPLOADED:
        load(T.load_bundled_texts(pick), pick, pick=pick)


# ------------------------------------------------------------------ pages
_page_run = threading.local()  # per script thread: is app.py running as the Planner page?


def route(entry_file: str, title: str) -> bool:
    """Multipage navigation with the main page titled `title` (Streamlit would label it after the entry
    file, "app"): the main page is the entry file itself, then every pages/*.py in name order.

    Returns True on the entry run, after it ran the chosen page; False when the entry file is being run
    as the main page (the caller then draws it). Being the file (not a function) keeps the main page
    addressable as app.py, e.g. by AppTest.switch_page."""
    if getattr(_page_run, "active", False):
        return False
    entry = Path(entry_file).resolve()
    pages = [st.Page(entry, title=title, default=True)]
    pages += [st.Page(p) for p in sorted((entry.parent / "pages").glob("*.py"))]
    page = st.navigation(pages)
    _page_run.active = True
    try:
        page.run()
    finally:
        _page_run.active = False
    return True
