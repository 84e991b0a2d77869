"""Benchmark: the switch planner's candidate topologies, cold against started MIP solves.

On the default data over 24 hourly periods (loads, PV and the microgrids' load minus
wind, as ``mgcosim reconfigure --periods 24`` takes them), :func:`candidate_topologies`
solves the single-period loss-minimising MILP at the valley, flat and peak load, each
refined by Kelley rounds of its loss cuts. Side by side in one process, alternating:

* ``started``: as the library does it, every MIP solve after the model's first starts
  from the model's last switch states, without HiGHS's sub-MIP heuristics;
* ``cold``: every solve from scratch with HiGHS's defaults (no start).

Prints the median seconds of each, their ratio, the MIP solves and whether both found the
same topologies. Usage::

    python benchmarks/bench_candidates.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

from mgcosim.controllers import solve, topology
from mgcosim.controllers.dso import dso_data
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.reconfigure import build_case


def candidates(dd, case) -> tuple[float, int, list[tuple[int, ...]]]:
    """Seconds, MIP solves and the open branches of each candidate."""
    solves = 0
    run = solve.solve_mip

    def counted(*args, **kwargs):
        nonlocal solves
        solves += 1
        return run(*args, **kwargs)

    with mock.patch.object(topology, "solve_mip", counted):
        t0 = time.perf_counter()
        found = topology.candidate_topologies(
            dd, case.load_scale, case.pm_mw, case.pv_mw, case.mg_q_mvar
        )
        seconds = time.perf_counter() - t0
    return seconds, solves, [tuple(topology.open_set(c)) for c in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scenario = load_scenario(default_scenario_path())
    dd = dso_data(build_ieee33(scenario.data), scenario.data)
    case = build_case(scenario, periods=24, microgrids=True)
    times: dict[str, list[float]] = {"started": [], "cold": []}
    solves, found = {}, {}
    for _ in range(args.repeats):
        s, solves["started"], found["started"] = candidates(dd, case)
        times["started"].append(s)
        with mock.patch.object(topology, "last_binaries", lambda m: None):
            s, solves["cold"], found["cold"] = candidates(dd, case)
        times["cold"].append(s)
    print(f"{'variant':8} {'median s':>9} {'MIP solves':>10}  candidates (open branches)")
    for variant, seconds in times.items():
        print(
            f"{variant:8} {statistics.median(seconds):9.2f} {solves[variant]:10d}  {found[variant]}"
        )
    ratio = statistics.median(times["started"]) / statistics.median(times["cold"])
    same = found["started"] == found["cold"]
    print(f"started / cold: {ratio:.2f}; same topologies: {same}")


if __name__ == "__main__":
    main()
