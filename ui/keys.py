"""Every st.session_state key the app uses, in one place: what it holds and who writes it.

Widget keys are session-state keys too (Streamlit stores a widget's value under its key). Families built
from a name (an editor per table, a version counter per table) are given as functions. Modules refer to
these names instead of repeating the strings, so a key is renamed in one place and a reader can see the
whole session state here.
"""
from __future__ import annotations

# ---------------------------------------------------------------- the loaded scenario (ui.state)
CATALOG_TEXTS = "catalog_texts"  # the catalogue's file texts (edited on the Catalogue page)
BASE_TEXTS = "base_texts"  # the scenario's file texts as loaded
TEXTS = "texts"  # the current texts: the loaded ones with every widget and table edit written in
SCENARIO_NAME = "scenario_name"
LOADED_PICK = "loaded_pick"  # which bundled scenario (or UPLOADED) the texts came from
BASE_VALUES = "base_values"  # widget values the loaded texts imply
VALUES = "values"  # current widget values
BASE_POOL = "base_pool"  # the GPU-pool table as loaded (a DataFrame)
POOL = "pool"  # the GPU-pool table with the user's edits
BASE_LINKS = "base_links"  # the loaded network's links by GPU-type pair
NET_DEFAULT = "net_default"  # the loaded network's default link (GB/s)
NET = "net"  # the network table with the user's edits
LOAD_COUNT = "load_count"  # scenarios loaded in this session (tests and reruns read it)
POOL_MARKS = "_pool_marks"  # the pool table's invalid cells, marked in the table
POOL_FILLED = "_pool_filled"  # cells just filled from the catalogue
LAST_GOOD_SCENARIO = "_last_good_scenario"  # the last scenario that parsed
UPLOAD_DONE = "_upload_done"  # ids of the uploaded files already loaded
UPLOAD_PROBLEMS = "upload_problems"  # why the last upload was not loaded


def version(name: str) -> str:
    """A table's version counter: bumped when the table is reloaded or reset (its editor is remounted)."""
    return f"_{name}_ver"


def grid(name: str) -> str:
    """The (version, key, frame) a stable editor was mounted with."""
    return f"_{name}_grid"


def editor_key(name: str) -> str:
    """Where the current editor widget key of table `name` is kept."""
    return f"{name}_editor_key"


# ---------------------------------------------------------------- Planner page widgets (ui.inputs)
SCENARIO_PICK = "scenario_pick"
UPLOAD = "upload"
USE_CASE = "use_case"
MAX_TTFT_MS = "max_ttft_ms"
MAX_TPOT_MS = "max_tpot_ms"
AUTO_SOLVE = "auto_solve"
PRESOLVE = "presolve"
SOLVE_BUTTON = "solve_button"
METHOD = "method"
QUANTIZATION = "quantization"
CUSTOM_SIZES = "custom_sizes"
SEGMENT_SIZES_TEXT = "segment_sizes_text"
TOGGLES = (AUTO_SOLVE, PRESOLVE)  # kept as "_" + key while other pages are shown (Streamlit drops widget keys)


def kept(toggle: str) -> str:
    return "_" + toggle


# ---------------------------------------------------------------- the Planner page's solve (ui.planner_page)
JOB = "_job"  # (what it solves: (texts, catalogue, method), solve_slots.Ticket) while a solve runs
CANCEL_SOLVE = "cancel_solve"  # the Cancel button
CANCELLED = "_cancelled"  # (what was cancelled, seconds it had run)
LAST_GOOD = "last_good"  # the last result shown, kept to show beside an error or a pending solve
OPTIONS_SEEN = "_options_seen"  # stage options of the last scenario seen (a guess for the next one's size)
NEIGHBOURS = "_neighbours"  # (settings, pre-solve tasks) for the quantization slider's neighbours
FIRST_VIEW_DONE = "_first_view_done"  # the session's first page view was drawn (ui.planner_page pauses once)
RESULT_VIEW = "result_view"  # which of the result's tabs (stage table, per-GPU view) is open (ui.results)

# ---------------------------------------------------------------- other pages (their modules own these)
PESSIMISTIC = "pessimistic"  # ui.uncertainty_view
PESSIMISTIC_CACHE = "_pessimistic_cache"
CALIB_POINTS = "calib_points"  # ui.calibrate_view / ui.uncertainty_view
WHATIF_PREFIX = "wf_"  # ui.whatif_view, ui.whatif_jobs, ui.whatif_compare: widgets and results
COMPARE_PREFIX = "cmp_"  # ui.whatif_compare
EXPLORER_PREFIX = "ex_"  # ui.explorer
ACCURACY_PREFIX = "acc_"  # ui.accuracy
CALIBRATE_PREFIX = "calib_"  # ui.calibrate_view
FLEET_PREFIX = "fleet_"  # ui.fleet_view
