"""Benchmark: tie-line projection of the microgrids and the three restoration strategies.

For each microgrid of the seed 003 case (:func:`controllers.coordinated.main_grid_loss_case`):
the time per projection (build the full model, load it in HiGHS, vertex search, virtual-node
ranges), median and maximum of ``--repeats`` runs, the vertex search alone, the number of
LP solves, the vertices and the hull area. Then the three strategies (no sharing, central
dispatch, projection at the given preferences and at preferences 1) with
:func:`controllers.coordinated.format_table` and their solve times. The machines are shared
and noisy: compare ratios, not absolute milliseconds.

Usage::

    python benchmarks/bench_projection.py [--repeats 20] [--threshold-mw 0.001]
                                          [--hour 18] [--window-h 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mgcosim.controllers.coordinated import (
    DEFAULT_PREFERENCE,
    NO_PREFERENCE,
    compare_strategies,
    format_table,
    main_grid_loss_case,
    solve_projection,
    uniform_preference,
)
from mgcosim.controllers.projection import project_microgrid


def projection_timing(case, threshold_mw: float, repeats: int) -> dict:
    out = {}
    for g, net in case.microgrids.items():
        runs = [
            project_microgrid(net, case.conditions[g], NO_PREFERENCE, threshold_mw)
            for _ in range(repeats)
        ]
        hull = runs[-1].offer.hull
        total = [r.time_s for r in runs]
        search = [r.search_s for r in runs]
        out[g] = {
            "projection_ms_median": 1000 * statistics.median(total),
            "projection_ms_max": 1000 * max(total),
            "search_ms_median": 1000 * statistics.median(search),
            "n_solves": hull.n_solves,
            "n_vertices": len(hull.vertices),
            "area_mw_mvar": hull.area_mw_mvar,
        }
    return out


def timing_table(timing: dict, repeats: int, threshold_mw: float) -> str:
    lines = [
        f"Projection per microgrid (threshold {1000 * threshold_mw:g} kW, {repeats} runs)",
        f"  {'':4s} {'median ms':>9s} {'max ms':>7s} {'search ms':>9s} {'solves':>6s} "
        f"{'vertices':>8s} {'area MW*Mvar':>12s}",
    ]
    for g, t in timing.items():
        lines.append(
            f"  {g:4s} {t['projection_ms_median']:9.1f} {t['projection_ms_max']:7.1f} "
            f"{t['search_ms_median']:9.1f} {t['n_solves']:6d} {t['n_vertices']:8d} "
            f"{t['area_mw_mvar']:12.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threshold-mw", type=float, default=1e-3)
    parser.add_argument("--hour", type=int, default=18)
    parser.add_argument("--window-h", type=float, default=2.0)
    parser.add_argument("--json", help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    case = main_grid_loss_case(hour=args.hour, window_h=args.window_h)
    timing = projection_timing(case, args.threshold_mw, args.repeats)
    print(timing_table(timing, args.repeats, args.threshold_mw))
    results, projections = compare_strategies(
        case, uniform_preference(case, DEFAULT_PREFERENCE), args.threshold_mw
    )
    results["projection_pref1"] = solve_projection(
        case, uniform_preference(case, NO_PREFERENCE), args.threshold_mw, projections=projections
    )
    print(format_table(results))
    print(
        "  solve times (s): "
        + "; ".join(
            f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in r.solve_time_s.items())
            for name, r in results.items()
        )
    )
    if args.json:
        figures = {
            "projection": timing,
            "strategies": {
                name: {
                    "weighted_mw": r.weighted_mw,
                    "restored_mw_by_tier": r.restored_mw_by_tier(),
                    "solve_time_s": r.solve_time_s,
                }
                for name, r in results.items()
            },
        }
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
