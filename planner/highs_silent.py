"""A silent highspy.Highs, without Pyomo (the fleet path never loads Pyomo; `highs_direct` does).

HiGHS prints a copyright banner to the C-level stdout when the process's first instance is made, which
would corrupt the CLI's --json output; that one construction runs with file descriptor 1 on /dev/null."""
from __future__ import annotations

import os
import sys
import threading

import highspy

# HiGHS's model status as the planner reports it (the solve wrappers of the MILP and of the fleet); a status
# not listed (e.g. a solve error) is a SolverError for the caller
STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
}

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
