"""Benchmark: every restoration plan of the fault scenarios, as the co-simulation makes them.

Runs ``scenarios/blackout.toml`` and ``scenarios/fault_midday.toml`` through mosaik over the
fault's window only (from 1 h before the fault to 1 h after the repair; the days'
rule-based hours before it change only the storage's state) and prints per scenario: the
restoration plans, how many are optimal within the controller's gap (``[restoration]
mip_rel_gap``, default 1 %) rather than stopped at its node limit, the largest gap, and the
median and largest solve time (``timings.csv``). Target (issue "Solves that give the same
right answer on any machine"): all optimal, median <= 2 s, max <= 10 s on 2 cores.

    python benchmarks/bench_restore_plans.py [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from mgcosim.scenarios.loader import load_scenario_text
from mgcosim.sim.world import run_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"
CASES = ("blackout.toml", "fault_midday.toml")
BEFORE_S = AFTER_S = 3600  # whole hours: the controller steps hourly outside faults


def window_scenario(path: Path, out: Path) -> Path:
    """``path`` cut to its fault window, written to ``out``."""
    sc = load_scenario_text(path.read_text(), path)
    start_s = min(f.start_s for f in sc.faults) - BEFORE_S
    end_s = max(f.start_s + f.repair_s for f in sc.faults) + AFTER_S
    start = sc.start + datetime.timedelta(seconds=start_s)
    lines = [f'name = "{sc.name}_window"', f"seed = {sc.seed}", 'controller = "rule_based"']
    lines += [f"start = {start.isoformat()}", f"duration_h = {(end_s - start_s) / 3600:g}"]
    for f in sc.faults:
        lines += ["[[faults]]", f'name = "{f.name}"', f'kind = "{f.kind}"']
        if f.branch_ieee is not None:
            lines.append(f"branch = {f.branch_ieee}")
        lines += [
            f"start_h = {(f.start_s - start_s) / 3600:g}",
            f"repair_h = {f.repair_s / 3600:g}",
        ]
    file = out / f"{sc.name}_window.toml"
    file.write_text("\n".join(lines) + "\n")
    return file


def plan_figures(run_dir: Path) -> dict:
    plans = pd.read_csv(run_dir / "plans.csv")
    times = pd.read_csv(run_dir / "timings.csv")
    rest = plans["mode"] == "restoration"
    seconds = times.loc[rest.to_numpy(), "restoration_time_s"].dropna().tolist()
    return {
        "plans": int(rest.sum()),
        "optimal": int((plans.loc[rest, "status"] == "optimal").sum()),
        "gap_max": float(plans.loc[rest, "mip_gap"].max()),
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_restore_plans_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'case':22} {'plans':>5} {'optimal':>7} {'max gap':>8} {'median s':>8} {'max s':>7}")
    for case in CASES:
        file = window_scenario(SCENARIOS / case, out)
        t0 = time.perf_counter()
        run_scenario(load_scenario_text(file.read_text(), file), out / file.stem, progress=False)
        r = plan_figures(out / file.stem)
        print(
            f"{case:22} {r['plans']:5d} {r['optimal']:7d} {r['gap_max']:8.2e} "
            f"{r['median_s']:8.2f} {r['max_s']:7.2f}   (run {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
