"""How close the DSO's models come to AC: the figures of the README's *Model accuracy*.

:func:`dso_day_errors`: the DSO dispatch model of the ADMM day, alone. For every hourly
horizon of the scenario, the controller's inputs are built exactly as the co-simulation
builds them (the seeded forecasts of :func:`sim.units.forecasts_at`, hourly means by
:func:`controllers.horizon.horizon_inputs`), the microgrid exchanges are fixed at the
planner's first guess (each microgrid's expected net demand: load minus expected wind), the
DSO LP is solved and its first period is checked by an AC power flow of its own injections
(:class:`controllers.plan_check.PlanACCheck`). One model serves all horizons, as the ADMM's
DSO agent does, so cuts found in one horizon stay for the next. ``cuts=None``: the loss cuts
are not refined (the initial tangent cuts alone: the model before refinement).
"""

from __future__ import annotations

from mgcosim.scenarios.loader import Scenario


def dso_day_errors(
    scenario: Scenario,
    cuts=None,
    hours: range | None = None,
    closed: dict[int, bool] | None = None,
) -> list[dict]:
    """Per horizon: the plan's first period against AC (see :class:`PlanACCheck`), with
    ``hour``, ``cut_rounds`` and ``cuts_added``. ``closed``: the topology of every period
    (default: the normally open ties open); ``cuts``: a
    :class:`controllers.loss_cuts.CutSettings`, or None for no refinement."""
    from mgcosim.controllers import dso
    from mgcosim.controllers.base import Measurements
    from mgcosim.controllers.coupled import set_dso_inputs
    from mgcosim.controllers.horizon import horizon_inputs
    from mgcosim.controllers.loss_cuts import CutSettings, solve_tight
    from mgcosim.controllers.plan_check import PlanACCheck, plan_point
    from mgcosim.controllers.solve import highs_solver, solve_optimal
    from mgcosim.networks.ieee33 import build_ieee33
    from mgcosim.sim.units import forecasts_at, stochastic_units

    data = scenario.data
    dd = dso.dso_data(build_ieee33(data), data)
    n_periods = max(1, scenario.horizon_s // 3600)
    step = scenario.controller_step_s
    hours = hours if hours is not None else range(scenario.duration_s // step)
    settings = cuts if cuts is not None else CutSettings(max_rounds=0)
    topology = [closed if closed is not None else dso.default_topology(dd)] * n_periods
    units = stochastic_units(scenario)
    m, solver = dso.build_dso_model(dd, n_periods), highs_solver()
    ac_check = PlanACCheck(data)
    rows = []
    for hour in hours:
        fc = forecasts_at(scenario, units, hour * 3600 // scenario.physical_step_s)
        meas = Measurements(time_s=fc.time_s, soc_mwh={})
        h = horizon_inputs(fc, meas, data, dd, 0.0, 1.0, n_periods, topology)
        set_dso_inputs(m, dd, h)
        for g, inp in h.mg.items():
            for t in m.T:
                m.pm[g, t].fix(float(inp.load_mw[t] - inp.prob @ inp.wind_mw[:, t]))
        what = f"DSO horizon at hour {hour}"
        tight = solve_tight(m, dd, lambda w=what: solve_optimal(m, solver, w), solver, settings)
        check = ac_check(plan_point(m, dd, 0))
        rows.append(
            {"hour": hour, "cut_rounds": tight.rounds, "cuts_added": tight.cuts_added} | check
        )
    return rows
