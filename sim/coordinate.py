"""``mgcosim coordinate``: coordinated restoration with microgrids by projection (seed 003).

The event (:func:`controllers.coordinated.main_grid_loss_case`): IEEE 33 with microgrids MG1/MG2/
MG3 at buses 2/11/27, the main grid lost, branches 12 (12-13) and 22 (3-23) damaged, one
restoration window of ``--window-h`` hours at ``--hour`` of the built-in profiles (18 h, the
DSO's peak), storage at its initial SOC, the DSO's black-start generators of
``networks/data/dso_black_start_generators.csv``. Tier weights 100 / 10 / 0.2.

Strategies: ``no_sharing`` (microgrids island, the DSO restores from its own sources),
``central`` (one model with every microgrid's internal network), ``projection`` (the
microgrids share their tie-line polygon, virtual-node ranges and preferences; the DSO
decides the tie-line powers; each microgrid then restores its own loads under them), and,
when ``--preference`` is not all ones, ``projection_pref1`` (the same with every preference
1, which must equal ``central``).

Printed: restored load per tier (DSO and microgrid loads), tie-line powers, DSO tier-1 buses
served, and the projection's accuracy per microgrid: vertices, hull area, solves, time per
projection (median of ``--repeats``), vertices feasible, points sampled inside feasible,
points beyond each facet by threshold + margin infeasible. ``--json FILE`` writes it all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

from mgcosim.sim.argtypes import positive_float, positive_int, write_json_report

OUTSIDE_MARGIN_MW = 1e-3
DEFAULT_PREFERENCE = "1.5,1.5,1"  # = controllers.coordinated.DEFAULT_PREFERENCE
EQUAL_TOL = 1e-6  # weighted MW: projection with preferences 1 vs central


def _preference(text: str) -> dict[int, float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not three numbers, e.g. 1.5,1.5,1") from None
    if len(values) != 3 or any(not v >= 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give three coefficients >= 1 for tiers 1,2,3, e.g. 1.5,1.5,1"
        )
    return {1: values[0], 2: values[1], 3: values[2]}


def _branches(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 12,22") from None


def projection_accuracy(case, projections, threshold_mw: float, samples: int, repeats: int):
    """Per microgrid: polygon figures, sampled checks and the time per projection."""
    from mgcosim.controllers.projection import check_accuracy, project_microgrid

    out = {}
    for g, proj in projections.items():
        hull = proj.offer.hull
        check = check_accuracy(proj.projector, hull, samples, OUTSIDE_MARGIN_MW)
        times, search = [], []
        for _ in range(repeats):
            again = project_microgrid(
                case.microgrids[g], case.conditions[g], proj.offer.preference, threshold_mw
            )
            times.append(again.time_s)
            search.append(again.search_s)
        out[g] = {
            "vertices": [list(v) for v in hull.vertices],
            "n_vertices": len(hull.vertices),
            "area_mw_mvar": hull.area_mw_mvar,
            "n_solves": hull.n_solves,
            "threshold_mw": threshold_mw,
            "projection_time_s_median": statistics.median(times),
            "search_time_s_median": statistics.median(search),
            "repeats": repeats,
            "source_p_mw": list(proj.offer.source_p_mw),
            "source_q_mvar": list(proj.offer.source_q_mvar),
            "tier_max_mw": proj.offer.tier_max_mw,
        } | asdict(check)
    return out


@dataclass(frozen=True)
class CoordinationStudy:
    """What ``mgcosim coordinate`` solves: the event, the preference and the checks."""

    hour: int = 18
    window_h: float = 2.0
    faulted: tuple[int, ...] = (12, 22)
    preference: dict[int, float] = field(default_factory=lambda: _preference(DEFAULT_PREFERENCE))
    threshold_mw: float = 1e-3
    samples: int = 200
    repeats: int = 3
    node_limit: int | None = None  # None: the library's default


def run_coordinate(args: CoordinationStudy) -> dict:
    """Solve the strategies and check the projections; a JSON-ready report."""
    from mgcosim.controllers.coordinated import (
        NO_PREFERENCE,
        NODE_LIMIT,
        compare_strategies,
        main_grid_loss_case,
        solve_projection,
        uniform_preference,
    )

    case = main_grid_loss_case(hour=args.hour, window_h=args.window_h, faulted=args.faulted)
    preference = uniform_preference(case, args.preference)
    start = time.perf_counter()
    node_limit = args.node_limit or NODE_LIMIT
    results, projections = compare_strategies(case, preference, args.threshold_mw, node_limit)
    if args.preference != NO_PREFERENCE:
        results["projection_pref1"] = solve_projection(
            case,
            uniform_preference(case, NO_PREFERENCE),
            args.threshold_mw,
            node_limit,
            projections,
        )
    total_s = time.perf_counter() - start
    accuracy = projection_accuracy(case, projections, args.threshold_mw, args.samples, args.repeats)
    pref1 = results.get("projection_pref1", results["projection"])
    gap = pref1.weighted_mw - results["central"].weighted_mw
    return {
        "event": {
            "case": case.name,
            "hour": case.hour,
            "window_h": case.event.window_h,
            "faulted_branches": sorted(case.event.faulted),
            "main_grid_available": case.event.main_grid_available,
            "dso_generators": [asdict(g) for g in case.event.generators],
            "preference": args.preference,
        },
        "strategies": {name: asdict(r) for name, r in results.items()},
        "projection_pref1_minus_central_weighted_mw": gap,
        "projection_pref1_equals_central": abs(gap) <= EQUAL_TOL,
        "tier1_projection_ge_no_sharing": results["projection"].restored_mw_by_tier()[1]
        >= results["no_sharing"].restored_mw_by_tier()[1] - EQUAL_TOL,
        "accuracy": accuracy,
        "strategies_time_s": total_s,
        "_results": results,
    }


def format_report(report: dict) -> str:
    from mgcosim.controllers.coordinated import format_table

    e = report["event"]
    pref = ", ".join(f"T{t} {v:g}" for t, v in e["preference"].items())
    lines = [
        f"Coordinated restoration, {e['case']}: main grid lost, branches "
        f"{e['faulted_branches']} damaged; one {e['window_h']:g} h window at {e['hour']} h; "
        f"DSO generators "
        + ", ".join(f"{g['name']} {1000 * g['p_max_mw']:.0f} kW" for g in e["dso_generators"])
        + f"; preference {pref}",
        format_table(report["_results"]),
        "  tie lines (P, Q) in kW / kvar, > 0: the microgrid imports:",
    ]
    for name, r in report["_results"].items():
        lines.append(
            f"  {name:<16s} "
            + "; ".join(
                f"{g} ({1000 * r.tie_p_mw[g]:.1f}, {1000 * r.tie_q_mvar[g]:.1f})"
                for g in r.tie_p_mw
            )
        )
    lines.append(
        f"  projection with preferences 1 - central: "
        f"{report['projection_pref1_minus_central_weighted_mw']:.2e} weighted MW "
        f"(equal within {EQUAL_TOL:g}: {report['projection_pref1_equals_central']}); "
        f"tier-1 load projection >= no sharing: {report['tier1_projection_ge_no_sharing']}"
    )
    lines.append("  projection accuracy (threshold, inside samples, outside = threshold + margin):")
    for g, a in report["accuracy"].items():
        lines.append(
            f"  {g}: {a['n_vertices']} vertices, area {a['area_mw_mvar']:.4f} MW*Mvar, "
            f"{a['n_solves']} solves, {1000 * a['projection_time_s_median']:.1f} ms per "
            f"projection (search {1000 * a['search_time_s_median']:.1f} ms, median of "
            f"{a['repeats']}); vertices feasible {a['vertices_feasible']}/{a['n_vertices']}, "
            f"inside feasible {a['inside_feasible']}/{a['n_inside']}, outside infeasible "
            f"{a['outside_infeasible']}/{a['n_outside']} at {1000 * a['outside_distance_mw']:g} kW"
        )
    lines.append(f"  strategies solved in {report['strategies_time_s']:.2f} s")
    return "\n".join(lines)


def cmd(args: argparse.Namespace) -> int:
    study = CoordinationStudy(
        hour=args.hour,
        window_h=args.window_h,
        faulted=tuple(args.faulted),
        preference=args.preference,
        threshold_mw=args.threshold_mw,
        samples=args.samples,
        repeats=args.repeats,
        node_limit=args.node_limit,
    )
    return print_study(study, args.json)


def print_study(study: CoordinationStudy, json_path: str | None) -> int:
    """Run the study, print its table, write the JSON report; the exit code."""
    from mgcosim.controllers.errors import OptimisationError

    try:
        report = run_coordinate(study)
    except (OptimisationError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_report(report))
    write_json_report(json_path, {k: v for k, v in report.items() if not k.startswith("_")})
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``mgcosim coordinate`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "coordinate",
        help="restoration after the main grid is lost: microgrids on their own vs central "
        "dispatch vs sharing each microgrid's feasible region (a projection)",
    )
    p.add_argument("--hour", type=int, default=18, help="hour of the profiles (default 18)")
    p.add_argument(
        "--window-h", type=positive_float, default=2.0, help="restoration window (default 2 h)"
    )
    p.add_argument(
        "--faulted",
        type=_branches,
        default=(12, 22),
        help="damaged IEEE branches (default 12,22)",
    )
    p.add_argument(
        "--preference",
        type=_preference,
        default=_preference(DEFAULT_PREFERENCE),
        help="preference coefficients of tiers 1,2,3 for every microgrid "
        f"(default {DEFAULT_PREFERENCE})",
    )
    p.add_argument(
        "--threshold-mw",
        type=positive_float,
        default=1e-3,
        help="tolerance of the feasible-region search (default 0.001 MW)",
    )
    p.add_argument(
        "--samples", type=positive_int, default=200, help="inside points checked per microgrid"
    )
    p.add_argument(
        "--repeats", type=positive_int, default=5, help="projections timed per microgrid"
    )
    p.add_argument(
        "--node-limit",
        type=positive_int,
        help="branch-and-bound nodes per MILP at most (default 20000); a MILP stopped there "
        "is an error, not a result",
    )
    p.add_argument("--json", help="write the report as JSON to this file")
    p.set_defaults(func=cmd)
