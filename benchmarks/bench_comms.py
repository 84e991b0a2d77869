"""Benchmark: the bilevel ADMM under message loss and delay (controllers/comms.py).

On the default scenario's data, ``--horizons`` consecutive hourly horizons from
``--start-hour`` (``--periods`` periods of 1 h, ``--scenarios`` wind scenarios, default
topology), one process. The plant is rolled forward with the centralised plan's first
period, so every setting solves the same inputs; the centralised optimum of each horizon is
the reference. For every loss probability and delay, a fresh :class:`BilevelADMM` with that
``[communication]`` setting (every link alike, seed = the scenario's, deadline 1 s) runs the
horizons, warm-started as the running controller does (cold again after a failed step).

Columns: ``gap %``: mean over the horizons with a plan of 100 (cost - optimum) / |optimum|,
the cost being every agent's own cost at its final iterate (what is applied; the
coordinator's view may be stale); ``|gap| max``; ``outer``/``inner``: mean iterations;
``conv``: horizons converged; ``PCC MW``: largest |DSO - microgrid| exchange at the applied
iterates (settled at the PCC); ``lost``, ``late``: messages per horizon (mean);
``stale``: replies missing at an update, the last value reused (mean per horizon, the
per-iteration fallback); ``retry``: finish requests repeated; ``rule``: steps that fell
back to the rule-based plan (a plan lost after every finish attempt, or a link silent all
horizon). Usage::

    python benchmarks/bench_comms.py [--horizons 3] [--start-hour 8] [--periods 6]
                                     [--losses 0,0.05,0.1,0.2,0.3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pyomo.environ as pyo
from bench_admm import rolled_measurements, start_hour_of

from mgcosim.controllers.admm import ADMMSettings, BilevelADMM
from mgcosim.controllers.base import Measurements
from mgcosim.controllers.comms import MISSING_REPLY, CommunicationSettings, LinkSettings
from mgcosim.controllers.coupled import (
    HorizonInputs,
    build_centralised_model,
    set_centralised_inputs,
)
from mgcosim.controllers.dso import default_topology, dso_data
from mgcosim.controllers.errors import CommunicationError
from mgcosim.controllers.horizon import horizon_inputs
from mgcosim.controllers.loss_cuts import solve_tight
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.units import forecasts_at, stochastic_units

# (one-way delay s, jitter s) against the 1 s deadline: none late, and a round trip of
# 0.4 + 0.5 (U1 + U2) s, late when U1 + U2 > 1.2: 32 % of the replies
DELAYS = ((0.0, 0.0), (0.2, 0.5))


def reference_horizons(args: argparse.Namespace):
    """The horizons' inputs and centralised optima, the plant rolled by the optimum."""
    scenario = load_scenario(default_scenario_path())
    data, units = scenario.data, stochastic_units(scenario)
    dd = dso_data(build_ieee33(data), data)
    central = build_centralised_model(dd, data, args.periods, args.scenarios)
    solver = persistent_highs()
    steps_per_hour = 3600 // scenario.physical_step_s
    topo = [default_topology(dd)] * args.periods
    horizons, meas = [], None
    for i in range(args.horizons):
        k0 = (args.start_hour + i) * steps_per_hour
        fc = forecasts_at(scenario, units, k0, args.scenarios)
        meas = meas or Measurements(time_s=fc.time_s, soc_mwh={})
        h = horizon_inputs(fc, meas, data, dd, start_hour_of(scenario), 1.0, args.periods, topo)
        set_centralised_inputs(central, dd, h)
        solve_tight(central.dso, dd, lambda: solve_optimal(central, solver, "central"), solver)
        horizons.append((fc.time_s, h, float(pyo.value(central.obj))))
        meas = rolled_measurements(central, (k0 + steps_per_hour) * scenario.physical_step_s)
    return scenario, dd, horizons


def applied(admm: BilevelADMM) -> tuple[float, float]:
    """Every agent's own cost at its final iterate, and the largest PCC mismatch (MW)."""
    cost = admm.dso.own_cost() + sum(a.agent.own_cost() for a in admm.mgs.values())
    pm_dso = admm.dso.value("pm").reshape(len(admm.names), admm.T)
    pm_mg = np.array([admm.mgs[g].agent.value("pm") for g in admm.names])
    return float(cost), float(np.abs(pm_dso - pm_mg).max())


def run_setting(scenario, dd, horizons: list[tuple[int, HorizonInputs, float]], comms, args):
    settings = ADMMSettings(comms=comms)
    admm = BilevelADMM(dd, scenario.data, args.periods, args.scenarios, settings)
    rows, state = [], None
    for time_s, h, optimum in horizons:
        try:
            res = admm.solve(h, state.shifted(1) if state is not None else None, time_s)
        except CommunicationError:
            rows.append({"rule": 1, **vars(admm.comm_stats)})
            state = None
            continue
        cost, mismatch = applied(admm)
        state = res.state
        rows.append(
            {
                "rule": 0,
                "gap": 100 * (cost - optimum) / abs(optimum),
                "outer": res.outer_iterations,
                "inner": res.inner_iterations,
                "conv": int(res.converged),
                "pcc": mismatch,
                **vars(res.comm),
            }
        )
    return rows


def summary(loss: float, delay: tuple[float, float], rows: list[dict]) -> str:
    ok = [r for r in rows if not r["rule"]]
    mean = statistics.fmean

    def over(key: str, these=rows) -> str:
        return f"{mean(r[key] for r in these):8.1f}" if these else f"{'-':>8}"

    gap = f"{mean(r['gap'] for r in ok):9.3f}" if ok else f"{'-':>9}"
    gap_max = f"{max(abs(r['gap']) for r in ok):10.3f}" if ok else f"{'-':>10}"
    pcc = f"{max(r['pcc'] for r in ok):9.1e}" if ok else f"{'-':>9}"
    conv = f"{sum(r['conv'] for r in ok)}/{len(rows)}"
    return (
        f"{loss:5.2f} {delay[0]:5.1f}+{delay[1]:3.1f}{gap}{gap_max}{over('outer', ok)}"
        f"{over('inner', ok)}{conv:>6}{pcc}{over('lost')}{over('late')}{over('stale')}"
        f"{over('finish_retries')}{sum(r['rule'] for r in rows):6d}"
    )


HEADER = (
    f"{'loss':>5} {'delay s':>9}{'gap %':>9}{'|gap| max':>10}{'outer':>8}{'inner':>8}"
    f"{'conv':>6}{'PCC MW':>9}{'lost':>8}{'late':>8}{'stale':>8}{'retry':>8}{'rule':>6}"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizons", type=int, default=3)
    ap.add_argument("--start-hour", type=int, default=8)
    ap.add_argument("--periods", type=int, default=6)
    ap.add_argument("--scenarios", type=int, default=3)
    ap.add_argument("--losses", default="0,0.05,0.1,0.2,0.3")
    ap.add_argument("--missing-reply", default="hold", choices=MISSING_REPLY)
    args = ap.parse_args()
    losses = [float(x) for x in args.losses.split(",")]
    t0 = time.perf_counter()
    scenario, dd, horizons = reference_horizons(args)
    print(
        f"{scenario.name}: {args.horizons} horizons from {args.start_hour}:00, "
        f"{args.periods} periods of 1 h, {args.scenarios} wind scenarios, default topology; "
        f"seed {scenario.seed}, deadline 1 s, delay = one-way delay + jitter (s)\n"
    )
    print(HEADER)
    for delay in DELAYS:
        for loss in losses:
            link = LinkSettings(loss, *delay)
            comms = CommunicationSettings(scenario.seed, link, missing_reply=args.missing_reply)
            rows = run_setting(scenario, dd, horizons, comms, args)
            print(summary(loss, delay, rows), flush=True)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
