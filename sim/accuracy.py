"""How close the DSO's models come to AC: the figures of the README's *Model accuracy*.

* :func:`dso_day_errors`: the DSO dispatch model (fixed topology, microgrids passive: each
  imports its load minus its wind at the day-ahead shapes, as in ``mgcosim reconfigure``)
  over the hourly horizons of a scenario's day, each horizon's first period checked by an
  AC power flow of its own injections (:func:`controllers.plan_check.plan_ac_check`). One
  model serves all horizons, as the ADMM's DSO agent does, so cuts found in one horizon
  stay for the next. With ``cuts=None`` the loss cuts are not refined (the initial tangent
  cuts alone).
* :func:`reconfiguration_errors`: ``mgcosim reconfigure``'s snapshot, model against AC.
"""

from __future__ import annotations

import dataclasses
import datetime

from mgcosim.scenarios.loader import Scenario
from mgcosim.sim.reconfigure import build_case


def dso_day_errors(
    scenario: Scenario,
    cuts=None,
    hours: range | None = None,
    closed: dict[int, bool] | None = None,
) -> list[dict]:
    """Per horizon: the plan's first period against AC (see :func:`plan_ac_check`), with
    ``hour``, ``cut_rounds`` and ``cuts_added``. ``closed``: the topology (default: the
    normally open ties open); ``cuts``: :class:`controllers.loss_cuts.CutSettings`."""
    from mgcosim.controllers import dso
    from mgcosim.controllers.loss_cuts import CutSettings, solve_tight
    from mgcosim.controllers.plan_check import plan_ac_check, plan_point
    from mgcosim.controllers.solve import highs_solver, solve_optimal
    from mgcosim.controllers.topology import set_fixed_inputs
    from mgcosim.networks.ieee33 import build_ieee33

    data = scenario.data
    dd = dso.dso_data(build_ieee33(data), data)
    n_periods = max(1, scenario.horizon_s // 3600)
    hours = hours if hours is not None else range(max(1, scenario.duration_s // 3600))
    settings = cuts if cuts is not None else CutSettings(max_rounds=0)
    m, solver = dso.build_dso_model(dd, n_periods), highs_solver()
    dso.set_topology(m, closed if closed is not None else dso.default_topology(dd))
    rows = []
    for hour in hours:
        start = scenario.start + datetime.timedelta(hours=hour)
        case = build_case(dataclasses.replace(scenario, start=start), n_periods, True)
        set_fixed_inputs(m, dd, case.load_scale, case.pm_mw, case.pv_mw, case.mg_q_mvar)
        what = f"DSO horizon at hour {hour}"
        tight = solve_tight(m, dd, lambda w=what: solve_optimal(m, solver, w), solver, settings)
        check = plan_ac_check(data, plan_point(m, dd, 0))
        rows.append(
            {"hour": hour, "cut_rounds": tight.rounds, "cuts_added": tight.cuts_added} | check
        )
    return rows


def reconfiguration_errors(scenario: Scenario, microgrids: bool = False) -> dict:
    """``mgcosim reconfigure --periods 1`` (with or without microgrids): its report."""
    from mgcosim.sim.reconfigure import run_reconfigure

    return run_reconfigure(scenario, periods=1, microgrids=microgrids)
