"""Benchmark: the default 24-hour run, and the per-step cost of the AC power flow.

Prints medians over repeats measured side by side in one process (the machines are shared
and noisy: compare ratios, not absolute seconds). Usage::

    python benchmarks/bench_run.py [--runs 3] [--steps 96]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandapower as pp

from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.grid import GridInputs, GridModel
from mgcosim.sim.units import stochastic_units
from mgcosim.sim.world import run_scenario


def time_day_runs(runs: int) -> list[float]:
    """Wall time of complete default-scenario runs (world set-up included)."""
    scenario = load_scenario(default_scenario_path())
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            run_scenario(scenario, Path(out), progress=False)
            times.append(time.perf_counter() - t0)
    return times


def time_power_flows(steps: int) -> tuple[list[float], list[float]]:
    """Per-step time of GridModel.step (apply + AC power flow + measure) and of runpp alone."""
    scenario = load_scenario(default_scenario_path())
    units = stochastic_units(scenario)
    model = GridModel(build_ieee33(scenario.data), scenario.data)
    loads = set(model.elements["load"])
    step_times, pf_times = [], []
    for k in range(steps):
        powers = {name: float(u.realised_mw[k]) for name, u in units.items()}
        inp = GridInputs(
            load_p_mw={n: p for n, p in powers.items() if n in loads},
            available_p_mw={n: p for n, p in powers.items() if n not in loads},
        )
        t0 = time.perf_counter()
        model.step(k * 900, 900, inp)
        step_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pp.runpp(model.net, numba=False)
        pf_times.append(time.perf_counter() - t0)
    return step_times, pf_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=96)
    args = parser.parse_args()
    step_times, pf_times = time_power_flows(args.steps)
    day = time_day_runs(args.runs)
    med_step, med_pf, med_day = (statistics.median(x) for x in (step_times, pf_times, day))
    print(
        f"default 24 h run ({args.runs} runs): median {med_day:.2f} s "
        f"(min {min(day):.2f}, max {max(day):.2f})"
    )
    print(
        f"grid step, apply + AC power flow + measure ({args.steps} steps): "
        f"median {1e3 * med_step:.1f} ms"
    )
    print(f"pandapower runpp alone (same states): median {1e3 * med_pf:.1f} ms")
    print(f"ratio grid step / runpp: {med_step / med_pf:.2f}")
    print(f"share of the day run spent in 96 grid steps: {96 * med_step / med_day:.0%}")


if __name__ == "__main__":
    main()
