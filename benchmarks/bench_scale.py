"""Benchmark: the bilevel ADMM against the centralised model as the number of microgrids grows.

For the feeders with 3, 12 and 48 microgrids (``scenarios/base_day.toml``,
``scenarios/ieee33_mg12.toml``, ``scenarios/ieee33_mg48.toml``; networks/scaled.py), the same
rolling horizons as ``bench_admm.py`` (its :func:`run_horizons`: warm-started ADMM and the
centralised LP on identical inputs, side by side in one process), then one summary row per
feeder. The agents of the ADMM run one after the other in this process (issue "The bilevel
ADMM as communicating agents" puts them in their own processes), so ``processes`` is 1 and
the ADMM's time is the sum of its agents' solves. Usage::

    python benchmarks/bench_scale.py [--horizons 2] [--start-hour 12] [--microgrids 3 12 48]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_admm import run_horizons  # noqa: E402

from mgcosim.networks.ieee33 import build_ieee33  # noqa: E402
from mgcosim.scenarios.loader import load_scenario  # noqa: E402

SCENARIOS = Path(__file__).parents[1] / "scenarios"
FEEDERS = {3: "base_day.toml", 12: "ieee33_mg12.toml", 48: "ieee33_mg48.toml"}


def summary_row(n: int, path: Path, rows: list[dict]) -> dict:
    """One feeder's medians over its horizons."""
    sc = load_scenario(path)
    med = statistics.median
    return {
        "microgrids": n,
        "buses": len(build_ieee33(sc.data).bus),
        "agents": n + 1,  # the DSO and one per microgrid
        "processes": 1,
        "outer": med(r["outer"] for r in rows),
        "inner": med(r["inner"] for r in rows),
        "admm_s": med(r["admm_s"] for r in rows),
        "central_s": med(r["central_s"] for r in rows),
        "ratio": med(r["ratio"] for r in rows),
        "gap_pct_max": max(abs(r["gap_pct"]) for r in rows),
        "converged": f"{sum(r['converged'] for r in rows)}/{len(rows)}",
    }


def print_table(summary: list[dict]) -> None:
    head = (
        "| microgrids | buses | agents | processes | outer | inner | ADMM s/horizon "
        "| centralised s/horizon | ratio | max gap % | converged |"
    )
    print("\n" + head + "\n|" + "---|" * 11)
    for s in summary:
        print(
            f"| {s['microgrids']} | {s['buses']} | {s['agents']} | {s['processes']} "
            f"| {s['outer']:g} | {s['inner']:g} | {s['admm_s']:.2f} | {s['central_s']:.2f} "
            f"| {s['ratio']:.2f} | {s['gap_pct_max']:.3f} | {s['converged']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, default=2)
    parser.add_argument("--start-hour", type=int, default=12)
    parser.add_argument("--microgrids", type=int, nargs="+", default=sorted(FEEDERS))
    args = parser.parse_args()
    unknown = sorted(set(args.microgrids) - set(FEEDERS))
    if unknown:
        parser.error(f"no feeder with {unknown} microgrids: choose from {sorted(FEEDERS)}")
    args.milp_horizons = 0  # bench_admm's MILP comparison is not part of this table
    summary = []
    for n in args.microgrids:
        path = SCENARIOS / FEEDERS[n]
        print(f"\n== {n} microgrids ({path.name})")
        summary.append(summary_row(n, path, run_horizons(args, path)))
    print_table(summary)


if __name__ == "__main__":
    main()
