"""Typed errors of the planner.

Every error a user can cause is one of these; the CLI and the app turn them into a
clear message (never a traceback).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    file: str = ""
    row: int | None = None  # 1-based line number in the file (header is line 1)
    column: str = ""

    def __str__(self) -> str:
        where = self.file or "input"
        if self.row is not None:
            where += f", row {self.row}"
            if self.column:
                where += f", column '{self.column}'"
        elif self.column:  # a setting or command-line option rather than a table cell
            where += f", {self.column}"
        # One problem is one line of output, whatever a cell contained.
        return " ".join(f"{where}: {self.message}".split())


class PlannerError(Exception):
    """Base class of every error the planner raises on purpose."""


class InputError(PlannerError):
    """One or more problems with the inputs; all of them are collected before raising."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class TooLargeError(InputError):
    """The input is inside the documented limits but the work it needs is over a size guard; the message
    names the size reached, the limit and what to do (a smaller setting, or the flag that goes on anyway)."""

    def __init__(self, message: str, size: int = 0, limit: int = 0, where: str = "input", column: str = ""):
        self.size, self.limit = size, limit
        self._args = (message, size, limit, where, column)
        super().__init__(Problem(message, where, column=column))

    def __reduce__(self):  # crosses the worker process intact (Exception pickles only str(self))
        return (type(self), self._args)


class InfeasibleError(PlannerError):
    """No plan satisfies the limits. `binding` names the limits that cause it."""

    def __init__(self, message: str, binding: list[str] | None = None, hints: list[str] | None = None):
        self.binding = list(binding or [])
        self.hints = list(hints or [])
        text = message
        if self.binding:
            text += " Binding: " + "; ".join(self.binding) + "."
        if self.hints:
            text += " To make it feasible: " + "; ".join(self.hints) + "."
        super().__init__(text)


class SolverError(PlannerError):
    """The solver failed or returned a status we cannot turn into a plan."""

    def __init__(self, message: str, status: str = ""):
        self.status = status
        super().__init__(message)


class CancelledError(PlannerError):
    """The caller cancelled the solve (between two MILP solves); nothing partial is returned."""

    def __init__(self, message: str = "solve cancelled"):
        super().__init__(message)
