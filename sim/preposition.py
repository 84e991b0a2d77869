"""``mgcosim preposition``: MESS pre-positioning by two-stage robust optimisation (seed 002).

The case. The scenario (default: the built-in base day) gives the network data, with its
overrides, and the daily shapes: DSO loads = nominal x ``load_pu``, PV forecast = rating x
``pv_pu``, at ``--periods`` hourly periods from ``--start-h``. The MESS fleet, the PV
uncertainty set and the shedding costs come from ``networks/data/mess.csv``
(``--fleet``, ``--budget`` override the fleet size and Gamma). The event is the scenario's
first fault time: the branch faults starting then are the damaged branches, a main-grid
fault then means the main grid is lost, the start hour and the (rounded-up) repair hours
give ``--start-h`` and ``--periods``. Without faults in the scenario the default event is
:data:`controllers.robust_data.DEFAULT_EVENT` (branches 12, 22 and 37 damaged, main grid lost)
at 10 h for 4 h. ``--damaged``, ``--main-grid``, ``--start-h`` and ``--periods`` override
either.

Printed: the robust placement and switch states, the column-and-constraint generation's
bounds per iteration (with and without MESS), and the seed's four rows (robust /
deterministic, with / without MESS: placement buses, placement cost, worst-case shedding,
total), followed by every first stage evaluated on every row's worst-case PV.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.argtypes import non_negative_float, positive_float, positive_int, write_json_report
from mgcosim.sim.mess import scenario_case, scenario_event


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number >= 0")
    return value


def _branch_list(text: str) -> frozenset[int]:
    try:
        return frozenset(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of branches"
        ) from None


def run_preposition(args: argparse.Namespace) -> tuple[str, dict]:
    """Solve the four cases; return the printed text and the JSON report."""
    from mgcosim.controllers.robust_ccg import (
        compare,
        comparison_dict,
        format_iterations,
        format_table,
    )
    from mgcosim.controllers.robust_data import DEFAULT_EVENT, Event
    from mgcosim.networks.params import load_mess_params

    scenario = load_scenario(args.scenario or default_scenario_path())
    mess = load_mess_params()
    overrides = {"fleet_size_units": args.fleet, "pv_budget_per_period": args.budget}
    mess = dataclasses.replace(mess, **{k: v for k, v in overrides.items() if v is not None})
    mess.validate()
    damaged, main_grid, start_h, periods = scenario_event(scenario, DEFAULT_EVENT)
    event = Event(
        damaged_branches=damaged if args.damaged is None else args.damaged,
        main_grid_available=main_grid or args.main_grid,
    )
    args.start_h = start_h if args.start_h is None else args.start_h
    args.periods = periods if args.periods is None else args.periods
    case = scenario_case(scenario, mess, event, args.start_h, args.periods)
    result = compare(
        case, gap=args.gap, max_iterations=args.max_iterations, node_limit=args.node_limit
    )
    fs = result.robust.first_stage
    grid = "main grid available" if event.main_grid_available else "main grid lost"
    text = "\n".join(
        [
            f"MESS pre-positioning for {scenario.name!r}: damaged branches "
            f"{sorted(event.damaged_branches)}, {grid}; {case.n_periods} hourly periods from "
            f"{args.start_h:g} h; fleet {mess.fleet_size_units} x {mess.p_max_mw:g} MW / "
            f"{mess.e_max_mwh:g} MWh, PV down by {100 * mess.pv_dev_frac:g} % on at most "
            f"{mess.pv_budget_per_period} units per period; gap {args.gap:g}",
            f"Robust placement: MESS at buses {sorted(fs.mess_buses) or 'none'}; open branches "
            f"{sorted(set(b.ieee for b in case.dd.branches) - fs.closed_branches)}; "
            f"grid-forming sources at buses {sorted(fs.source_buses)}",
            "C&CG with MESS:",
            format_iterations(result.robust),
            "C&CG without MESS:",
            format_iterations(result.robust_no_mess),
            "Robust vs deterministic (worst case: the subproblem's PV for that first stage):",
            format_table(result),
        ]
    )
    report = {
        "scenario": scenario.name,
        "event": {
            "damaged_branches": sorted(event.damaged_branches),
            "main_grid_available": event.main_grid_available,
        },
    } | comparison_dict(result)
    return text, report


def cmd_preposition(args: argparse.Namespace) -> int:
    from mgcosim.controllers.errors import NotConvergedError, OptimisationError

    try:
        text, report = run_preposition(args)
    except (OptimisationError, NotConvergedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(text)
    write_json_report(args.json, report)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mgcosim preposition`` on the CLI's subparsers."""
    p = sub.add_parser(
        "preposition",
        help="place mobile storage (MESS) before an outage: robust vs deterministic "
        "placement, with and without mobile storage",
    )
    p.add_argument("scenario", nargs="?", help="scenario TOML file (default: the base day)")
    p.add_argument(
        "--gap",
        type=positive_float,
        default=1e-3,
        help="relative optimality gap of the robust solve (default 1e-3)",
    )
    p.add_argument(
        "--fleet", type=_non_negative_int, help="mobile storage units (default: mess.csv)"
    )
    p.add_argument(
        "--budget",
        type=_non_negative_int,
        help="uncertainty budget: PV units that may be lost per period (default: mess.csv)",
    )
    p.add_argument(
        "--damaged", type=_branch_list, help="damaged IEEE branches, e.g. 12,22,37 (default)"
    )
    p.add_argument(
        "--main-grid",
        action="store_true",
        help="the main grid stays available (default: lost, unless the scenario's event keeps it)",
    )
    p.add_argument(
        "--start-h",
        type=non_negative_float,
        help="event start hour (default: the scenario's first fault, else 10)",
    )
    p.add_argument(
        "--periods",
        type=positive_int,
        help="hourly periods (default: the fault's repair hours, else 4)",
    )
    p.add_argument(
        "--max-iterations",
        type=positive_int,
        default=20,
        help="iterations of the robust solve (column-and-constraint generation) at most "
        "(default 20)",
    )
    p.add_argument(
        "--node-limit",
        type=positive_int,
        default=20_000,
        help="branch-and-bound nodes per MILP at most (default 20000); beyond it: an error",
    )
    p.add_argument("--json", help="write the report as JSON to this file")
    p.set_defaults(func=cmd_preposition)
