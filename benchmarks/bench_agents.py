"""Benchmark: the bilevel ADMM as one object vs as mosaik agents, side by side in one run.

Runs the same short scenario (default data, ``--hours`` h, horizon ``--horizon-h`` h, 3 wind
scenarios, no centralised reference) three times: ``agents = "in_process"`` (one object),
``agents = "mosaik"`` with the microgrid agents in mosaik's process, and with each agent in
its own process. Prints the wall time of each run, whether the results are identical, and
the ADMM messages, bytes and iterations per horizon. Usage::

    python benchmarks/bench_agents.py [--hours 2] [--horizon-h 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.world import run_scenario

TOML = """name = "bench_agents"
duration_h = {hours}
horizon_h = {horizon}
controller = "admm"
seed = 7
[profiles]
wind_scenarios = 3
[admm]
agents = "{agents}"
reference = false
"""
MODES = {
    "single object": ("in_process", frozenset()),
    "mosaik agents, one process": ("mosaik", frozenset()),
    "mosaik agents, own processes": ("mosaik", frozenset({"MicrogridAgent"})),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=2)
    ap.add_argument("--horizon-h", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for label, (agents, separate) in MODES.items():
            path = Path(tmp) / f"{agents}_{len(separate)}.toml"
            path.write_text(TOML.format(hours=args.hours, horizon=args.horizon_h, agents=agents))
            out = Path(tmp) / path.stem
            t0 = time.perf_counter()
            run_scenario(load_scenario(path), out, progress=False, separate=separate)
            runs[label] = (time.perf_counter() - t0, pd.read_csv(out / "plans.csv"))
        ref = runs["single object"][1]
        for label, (wall_s, plans) in runs.items():
            same = plans.equals(ref)
            print(f"{label:30s} wall {wall_s:6.1f} s   plans.csv identical: {same}")
        cols = ["time_s", "outer_iterations", "inner_iterations", "admm_messages", "admm_bytes"]
        print(ref[cols].to_string(index=False))


if __name__ == "__main__":
    main()
