"""The `compare` subcommand: two scenarios side by side, each solved exactly, with honest status.

    python -m planner compare SCENARIO_A SCENARIO_B [--time-limit S] [--json] [--allow-large]

A scenario is a config folder (the seed's or ours) or a scenario file the app exported (`.json`). The
output is the Compare page's: the inputs that differ, the headline figures of each exact optimum with B's
change against A, the layouts, and whether both solves were proven ("NOT proven" naming the solve, its
gap on $/token and the limit that stopped it, when a time limit or node limit cut one short).
Exit 0 when at least one side has a plan (the other's reason is printed), 3 when neither has, 2 on bad
input, 4 on a solver failure, as every other command.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from .errors import InfeasibleError, InputError, Problem

log = logging.getLogger("planner")


def add_subcommands(sub) -> None:
    from .cli_common import add_allow_large
    from .cli_common import add_engines_flag

    c = sub.add_parser("compare", help="two scenarios (config folders or exported .json files) side by side, "
                                       "each solved exactly")
    c.add_argument("scenario_a", metavar="SCENARIO_A", help="config folder or exported scenario .json")
    c.add_argument("scenario_b", metavar="SCENARIO_B", help="config folder or exported scenario .json")
    c.add_argument("--time-limit", type=float, help="solver time limit per scenario, in seconds")
    c.add_argument("--json", action="store_true", help="print the comparison as one JSON document")
    add_allow_large(c)
    add_engines_flag(c)


def load_scenario(path_text: str, label: str, catalog=None):
    """A config folder or an exported scenario file as a Scenario (with `catalog`, default the bundled
    one); problems name the path."""
    from .csvio import decode, read_file
    from .scenario_io import load_config_dir, scenario_from_texts, scenario_texts_from_json

    path = Path(path_text)
    if path.is_dir():
        return load_config_dir(path, catalog=catalog)
    if not path.exists():
        raise InputError(Problem(f"{label}: no such config folder or scenario file", str(path)))
    name, texts = scenario_texts_from_json(decode(read_file(path), str(path)), str(path))
    return scenario_from_texts(texts, name=name, catalog=catalog)


def _prepared(args, path_text: str, label: str):
    from .cli_common import check_flag_number, guarded_candidates
    from .cli_common import catalog_for
    from .scenario_io import override_settings

    sc = load_scenario(path_text, label, catalog_for(args))
    if args.time_limit is not None:
        check_flag_number(args.time_limit, "--time-limit")
        sc = override_settings(sc, {"time_limit_s": args.time_limit}, {"time_limit_s": "--time-limit"})
    for w in sc.warnings:
        print(f"note: {label}: {w}", file=sys.stderr)
    if not args.allow_large:
        guarded_candidates(sc, args)  # the problem-size guard, before any MILP
    return sc


def comparison_doc(comp) -> dict:
    """The comparison as plain data (the JSON of `compare --json`); "not_proven" names each solve as
    A (name) or B (name), since two scenarios may share a name."""
    from .whatif import headline_row, proof

    return {"a": comp.name_a, "b": comp.name_b,
            "differences": [{"section": d.section, "item": d.item, "a": d.a, "b": d.b} for d in comp.differences],
            "figures": comp.figure_rows(),
            "plans": {"a": headline_row(comp.a) or {"infeasible": comp.reason_a},
                      "b": headline_row(comp.b) or {"infeasible": comp.reason_b}},
            **proof([(f"A ({comp.name_a})", comp.a), (f"B ({comp.name_b})", comp.b)])}


def cmd_compare(args) -> int:
    from .cli_common import emit, print_table
    from .whatif import compare_scenarios

    a = _prepared(args, args.scenario_a, "scenario A")
    b = _prepared(args, args.scenario_b, "scenario B")
    comp = compare_scenarios(a, b)
    if comp.a is None and comp.b is None:
        raise InfeasibleError(f"neither scenario has a feasible plan. A ({comp.name_a}): {comp.reason_a} "
                              f"B ({comp.name_b}): {comp.reason_b}")
    doc = comparison_doc(comp)

    def show(d):
        print(f"A: {d['a']}\nB: {d['b']}")
        print(f"\nInputs that differ ({len(d['differences'])}):" if d["differences"] else
              "\nNo input differs.")
        if d["differences"]:
            print_table(d["differences"], [("section", "section"), ("item", "item"), ("a", "A"), ("b", "B")])
        print("\nHeadline figures (each the exact optimum; change = B against A):")
        print_table(d["figures"], [("figure", ""), ("a", "A"), ("b", "B"), ("change_pct", "change %")])
        for side in ("a", "b"):
            plan = d["plans"][side]
            if "infeasible" in plan:
                print(f"{side.upper()} has no feasible plan: {plan['infeasible']}")
    return emit(args, doc, show)


COMPARE_COMMANDS = {"compare": cmd_compare}
