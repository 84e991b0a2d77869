"""Model error apart from forecast error: an AC power flow of a plan's own injections.

``validation.csv`` compares a plan, made on forecasts, with AC on the realised wind and load,
so it mixes the model's error with the forecast's. Here the first period *as planned* is
put into pandapower: the DSO network with the plan's topology and, at every IEEE bus, the
plan's net withdrawal (load - PV used + microgrid import, its reactive counterpart), the
microgrid buses themselves idle. Whatever differs between the plan's losses and voltages
and this power flow is the model's own error.

:func:`plan_point` extracts that operating point from a solved DSO block
(:mod:`controllers.dso`, ADMM or centralised); a :class:`PlanACCheck` builds the IEEE 33 net
once and, for every plan, sets its switches and withdrawals, runs the power flow and returns
the errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandapower as pp
import pyomo.environ as pyo

from mgcosim.controllers.dso import DSOData, state
from mgcosim.networks.params import NetworkData
from mgcosim.networks.powerflow import run_power_flow


@dataclass(frozen=True)
class PlanPoint:
    """One period of a plan, as the DSO model sees it (MW, Mvar, pu; IEEE numbering)."""

    closed: dict[int, bool]  # branch -> closed
    p_withdrawal_mw: dict[int, float]  # bus -> load - PV used + microgrid import
    q_withdrawal_mvar: dict[int, float]
    v_pu: dict[int, float]  # the model's voltage magnitudes
    p_loss_mw: float  # the model's losses, sum r ell


def net_withdrawals(
    dd: DSOData,
    load_p_mw: dict[int, float],
    load_q_mvar: dict[int, float],
    pv_mw: dict[str, float],
    pm_mw: dict[str, float],
    mg_q_mvar: dict[str, float],
) -> tuple[dict[int, float], dict[int, float]]:
    """One period's withdrawal at every IEEE bus, as the DSO model's balance has it:
    load - PV used + microgrid import (MW), load + microgrid reactive import (Mvar)."""
    p = {b: float(load_p_mw.get(b, 0.0)) for b in dd.buses}
    q = {b: float(load_q_mvar.get(b, 0.0)) for b in dd.buses}
    for name, bus in dd.pv_bus.items():
        p[bus] -= float(pv_mw[name])
    for name, bus in dd.mg_bus.items():
        p[bus] += float(pm_mw[name])
        q[bus] += float(mg_q_mvar[name])
    return p, q


def plan_point(m: pyo.Block, dd: DSOData, t: int = 0) -> PlanPoint:
    """Period ``t`` of a solved DSO block: its topology, injections, voltages and losses."""
    p, q = net_withdrawals(
        dd,
        {b: pyo.value(m.load_p[b, t]) for b in dd.buses},
        {b: pyo.value(m.load_q[b, t]) for b in dd.buses},
        {name: pyo.value(m.pv[name, t]) for name in dd.pv_bus},
        {name: pyo.value(m.pm[name, t]) for name in dd.mg_bus},
        {name: pyo.value(m.mg_q[name, t]) for name in dd.mg_bus},
    )
    ell = {b.ieee: pyo.value(m.lp[b.ieee, t] + m.lq[b.ieee, t]) for b in dd.branches}
    return PlanPoint(
        closed={b.ieee: pyo.value(state(m, b.ieee, t)) > 0.5 for b in dd.branches},
        p_withdrawal_mw={b: float(v) for b, v in p.items()},
        q_withdrawal_mvar={b: float(v) for b, v in q.items()},
        v_pu={b: float(max(pyo.value(m.v[b, t]), 0.0) ** 0.5) for b in dd.buses},
        p_loss_mw=float(sum(b.r_pu * ell[b.ieee] for b in dd.branches)),
    )


class PlanACCheck:
    """The IEEE 33 net of one caller, every unit idle and a zero load ``plan_{bus}`` at
    each IEEE bus; :meth:`__call__` puts a plan's topology and withdrawals into it."""

    def __init__(self, data: NetworkData) -> None:
        from mgcosim.networks.ieee33 import build_ieee33
        from mgcosim.networks.topology import bus_index, switch_of_branch

        self.net = net = build_ieee33(data)
        net.load[["p_mw", "q_mvar"]] = 0.0
        net.sgen[["p_mw", "q_mvar"]] = 0.0
        net.storage["p_mw"] = 0.0
        ieee = net.bus.ieee[net.bus.ieee > 0].astype(int)
        self.load = {b: pp.create_load(net, bus_index(net, b), 0.0, name=f"plan_{b}") for b in ieee}
        self.switch = {
            int(ln): switch_of_branch(net, int(ln)) for ln in net.line.ieee[net.line.ieee > 0]
        }

    def set_point(self, point: PlanPoint) -> pp.pandapowerNet:
        """The net with the point's topology and withdrawals."""
        self.set_topology(point.closed)
        return self.set_withdrawals(point.p_withdrawal_mw, point.q_withdrawal_mvar)

    def set_topology(self, closed: dict[int, bool]) -> None:
        for branch, on in closed.items():
            self.net.switch.at[self.switch[branch], "closed"] = bool(on)

    def set_withdrawals(self, p_mw: dict[int, float], q_mvar: dict[int, float]) -> pp.pandapowerNet:
        """The net with these withdrawals per IEEE bus (0 where absent)."""
        index = list(self.load.values())
        self.net.load.loc[index, "p_mw"] = [p_mw.get(b, 0.0) for b in self.load]
        self.net.load.loc[index, "q_mvar"] = [q_mvar.get(b, 0.0) for b in self.load]
        return self.net

    def __call__(self, point: PlanPoint) -> dict:
        """AC power flow of ``point``: losses and voltages of the plan against AC.

        Keys: ``ac_converged``; ``ac_loss_mw``, ``model_loss_mw``, ``loss_error_mw`` (model -
        AC) and ``loss_error_pct`` (of the AC losses); ``v_error_max_pu`` (max |V_model -
        V_ac| over the IEEE buses), ``v_error_bus``; ``ac_vmin_pu``. Losses are those of the
        37 IEEE branches.
        """
        return compare_with_ac(self.set_point(point), point.v_pu, point.p_loss_mw)


def compare_with_ac(
    net: pp.pandapowerNet,
    v_model_pu: dict[int, float],
    model_loss_mw: float,
    band_pu: tuple[float, float] | None = None,
) -> dict:
    """Run the AC power flow of ``net`` and compare a plan's voltages (IEEE buses) and
    losses (37 IEEE branches) with it; keys as :meth:`PlanACCheck.__call__`. Buses left
    without a source in AC (NaN) are not compared. With ``band_pu``: ``ac_v_violations``,
    the plan's buses outside the band in AC."""
    if not run_power_flow(net):
        return {"ac_converged": False, "model_loss_mw": model_loss_mw}
    ieee = net.bus["ieee"] > 0
    vm = net.res_bus.vm_pu[ieee].set_axis(net.bus.ieee[ieee].astype(int))
    live = [b for b in v_model_pu if not math.isnan(float(vm[b]))]
    errors = {b: abs(v_model_pu[b] - float(vm[b])) for b in live}
    worst = max(errors, key=errors.get) if errors else 0
    ac_loss = float(net.res_line.pl_mw[net.line.ieee > 0].fillna(0.0).sum())
    error = model_loss_mw - ac_loss
    out = {
        "ac_converged": True,
        "ac_loss_mw": ac_loss,
        "model_loss_mw": model_loss_mw,
        "loss_error_mw": error,
        "loss_error_pct": 100 * error / ac_loss if ac_loss > 0 else 0.0,
        "v_error_max_pu": errors.get(worst, math.nan),
        "v_error_bus": int(worst),
        "ac_vmin_pu": float(vm[live].min()) if live else math.nan,
        "dark_in_ac": len(v_model_pu) - len(live),
    }
    if band_pu is not None:
        low, high = band_pu
        out["ac_v_violations"] = sum(not low <= float(vm[b]) <= high for b in live)
    return out
