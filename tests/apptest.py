"""Helpers shared by the Streamlit AppTest files: running the app, reading metrics, capturing downloads."""
from __future__ import annotations

from pathlib import Path

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


class RecordingStorage(MemoryMediaFileStorage):
    """In-memory media storage that also keeps every download's bytes by file name (the `downloads`
    fixture in conftest.py installs it)."""

    files: dict[str, bytes] = {}

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, bytes):
            RecordingStorage.files[filename] = path_or_data
        return super().load_and_get_id(path_or_data, mimetype, kind, filename)


def run_app(timeout_s: float = 120, scenario: str | None = "medium") -> AppTest:
    """The main page, run once, on a bundled `scenario` (None: the app's default, llama70b-chat).
    Most tests use the seed's `medium` folder: small, fast, and its rows are what they edit."""
    at = AppTest.from_file(APP, default_timeout=timeout_s)
    if scenario is not None:
        at.session_state["scenario_pick"] = scenario  # loaded before anything is solved (state.process_pick)
    return at.run()


def ok(at: AppTest) -> AppTest:
    """`at`, after checking that its last run raised nothing."""
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str, exact: bool = False) -> str:
    """The value of the metric whose label starts with (or, with `exact`, is) `label`."""
    for m in at.metric:
        if m.label == label or (not exact and m.label.startswith(label)):
            return m.value
    raise AssertionError(f"no metric {label!r}: {[m.label for m in at.metric]}")


def usd_m(x: float) -> str:
    """$/million tokens as the app shows it."""
    return f"${x:,.4f}" if x < 10 else f"${x:,.2f}"
