"""The --out folder of the commands that write files: checked before any work, write errors as one line.

Apart from `cli_common` because `cli_calibrate` needs it and `cli_common` needs `cli_calibrate`'s
--engines flag.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InputError, Problem


def check_out(args) -> Path:
    """The --out folder, refused (exit 2) before any work when nothing could be written there."""
    from .report import check_out_dir

    problem = check_out_dir(args.out)
    if problem:
        raise InputError(Problem(problem, "command line", column="--out"))
    return Path(args.out)


def write_out(out: Path, write) -> None:
    """Run `write`; an OS error (disk full, the folder removed meanwhile) is one line naming --out."""
    try:
        write()
    except OSError as exc:
        where = f" '{exc.filename}'" if exc.filename else ""
        raise InputError(Problem(f"cannot write{where} in '{out}': {exc.strerror or exc}", "command line",
                                 column="--out")) from exc
