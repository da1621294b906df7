"""Ctrl-C, remembered. A C extension interrupted while it initialises can replace the KeyboardInterrupt with
an ImportError of its own (numpy's "Importing the numpy C-extensions failed ... PyCapsule_Import could not
import module "datetime"", pybind11's "initialization failed" in highspy), so the exception alone cannot tell
a Ctrl-C from a broken install. The CLI installs this handler first and asks `seen()` before calling a failure
an internal error."""
from __future__ import annotations

import signal
import threading

_seen = False


def _on_sigint(signum, frame):
    global _seen
    _seen = True
    raise KeyboardInterrupt


def install() -> None:
    """Remember SIGINT from now on, where Python's own handler is in place (not over a caller's handler or an
    ignored SIGINT, and only in the main thread, where signal handlers can be set)."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def seen() -> bool:
    """Whether a SIGINT arrived since `install`."""
    return _seen
