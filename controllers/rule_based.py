"""Rule-based baseline: each microgrid balances itself, the DSO keeps its topology.

Per microgrid and step, with forecast net demand ``d = load - wind``:
storage absorbs a surplus (``d < 0``) and covers a deficit (``d > 0``) within its power
and energy limits; the micro gas turbine covers what remains of a deficit within its
limits and ramp rate; the grid (through the PCC) takes the remainder. Wind is never
curtailed; the DSO's PV is not curtailed either.
"""

from __future__ import annotations

import numpy as np

from mgcosim.controllers.base import Forecasts, Measurements, Plan
from mgcosim.networks.params import MicrogridParams, NetworkData
from mgcosim.networks.storage import soc_change_mwh, unit_feasible_power_mw


class RuleBasedController:
    """The baseline of :mod:`controllers.rule_based`."""

    def __init__(self, data: NetworkData, plan_steps: int) -> None:
        self.data = data
        self.plan_steps = plan_steps

    def plan(self, meas: Measurements, fc: Forecasts) -> Plan:
        n = min(self.plan_steps, fc.n_steps)
        setpoints: dict[str, np.ndarray] = {}
        for mg in self.data.microgrids:
            mt, ess = self._balance(mg, meas, fc, n)
            setpoints[f"{mg.name}_mt"] = mt
            setpoints[f"{mg.name}_ess"] = ess
            setpoints[f"{mg.name}_wind"] = np.full(n, mg.wind_p_rated_mw)
        for pv in self.data.pv:
            setpoints[pv.name] = np.full(n, pv.p_rated_mw)
        return Plan(
            time_s=fc.time_s,
            step_h=fc.step_h,
            setpoints_mw=setpoints,
            info={"controller": "rule_based"},
        )

    def _balance(
        self, mg: MicrogridParams, meas: Measurements, fc: Forecasts, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        net_demand = fc.p_mw[f"{mg.name}_load"][:n] - fc.p_mw[f"{mg.name}_wind"][:n]
        soc = float(meas.soc_mwh.get(f"{mg.name}_ess", mg.ess_e_init_mwh))
        mt_prev = float(meas.mt_p_mw.get(f"{mg.name}_mt", 0.0))
        mt, ess = np.zeros(n), np.zeros(n)
        for k, d in enumerate(net_demand):
            ess[k] = storage_response(mg, soc, d, fc.step_h)
            soc += soc_change_mwh(ess[k], mg.ess_eta_ch, mg.ess_eta_dis, fc.step_h)
            mt[k] = turbine_response(mg, d + ess[k], mt_prev, fc.step_h)
            mt_prev = mt[k]
        return mt, ess


def storage_response(
    mg: MicrogridParams, soc_mwh: float, net_demand_mw: float, step_h: float
) -> float:
    """Storage power (charging > 0) that absorbs a surplus or covers a deficit within limits."""
    return unit_feasible_power_mw(mg, -net_demand_mw, soc_mwh, step_h)


def turbine_response(
    mg: MicrogridParams, residual_mw: float, mt_prev_mw: float, step_h: float
) -> float:
    """Turbine output covering a residual deficit: off, or on within [min, max] and ramp.

    A stopped turbine starts only for a residual of at least its minimum and reaches at most
    ``min + ramp`` in its first step; a running one moves by at most ``ramp`` per step and
    may stop once it is within ``ramp`` of its minimum and the residual falls below it.
    """
    ramp_mw = mg.mt_ramp_mw_per_h * step_h
    p_min, p_max = mg.mt_p_min_mw, mg.mt_p_max_mw
    if mt_prev_mw <= 0:
        return 0.0 if residual_mw < p_min else min(residual_mw, p_min + ramp_mw, p_max)
    if residual_mw < p_min and mt_prev_mw <= p_min + ramp_mw:
        return 0.0
    low, high = max(p_min, mt_prev_mw - ramp_mw), min(p_max, mt_prev_mw + ramp_mw)
    return float(np.clip(residual_mw, low, high))
