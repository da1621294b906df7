"""A silent highspy.Highs, without Pyomo (the fleet path never loads Pyomo; `highs_direct` does).

HiGHS prints a copyright banner to the C-level stdout when the process's first instance is made, which
would corrupt the CLI's --json output; that one construction runs with file descriptor 1 on /dev/null."""
from __future__ import annotations

import os
import sys
import threading

import highspy

_banner_lock = threading.Lock()
_banner_shown = False


def new_highs() -> highspy.Highs:
    """A highspy.Highs with its output switched off (and, the first time, its banner swallowed)."""
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            h = highspy.Highs()
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _banner_shown = True
    h.setOptionValue("output_flag", False)
    return h
