"""A restoration plan against AC at its own operating point (the model's error alone).

``validation.csv`` compares a restoration plan, made on forecasts, with the grid's AC power
flow of the realised step. Here the plan's first period *as planned* goes into pandapower,
as :mod:`controllers.plan_check` does for the dispatch: the plan's live branches closed and
everything else open; the substation in service when the main grid is; each grid-forming
microgrid (or mobile storage) as the slack of its island at its own bus and voltage
``gf_vm_pu``, as in the grid simulator; at every energised IEEE bus the plan's withdrawal
(load picked up, minus PV used, plus the import of every microgrid that does not form an
island), active and reactive. The differences in losses and voltages are the model's own
error; AC voltages outside the band on energised buses are violations the plan did not
expect (its voltage floor holds in the model).
"""

from __future__ import annotations

from dataclasses import dataclass

from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.plan_check import PlanACCheck, compare_with_ac
from mgcosim.controllers.restoration_data import RestorationInputs, RestorationPeriod
from mgcosim.networks.ieee33 import SUBSTATION
from mgcosim.networks.params import NetworkData


@dataclass(frozen=True)
class Withdrawals:
    """Net withdrawal per IEEE bus of one restoration period (MW, Mvar)."""

    p_mw: dict[int, float]
    q_mvar: dict[int, float]


def withdrawals(
    period: RestorationPeriod, inp: RestorationInputs, dd: DSOData, t: int = 0
) -> Withdrawals:
    """Load picked up - PV used + import of the microgrids that follow, per energised bus."""
    p = dict.fromkeys(period.energised_buses, 0.0)
    q = dict.fromkeys(period.energised_buses, 0.0)
    for bus in period.picked_up_buses:
        load_mw = float(inp.demand_mw[bus][t])
        p[bus] += load_mw
        q[bus] += load_mw * dd.load_q_per_p(bus)
    for name, bus in dd.pv_bus.items():
        if bus in p:
            p[bus] -= float(inp.pv_mw[name][t]) - period.pv_curtailed_mw[name]
            q[bus] -= period.pv_q_mvar.get(name, 0.0)
    for name, bus in dd.mg_bus.items():
        if bus in p and name not in period.grid_formers:
            p[bus] += period.mg_exchange_mw[name]
            q[bus] += period.mg_exchange_mvar.get(name, 0.0)
    return Withdrawals(p, q)


class RestorationACCheck(PlanACCheck):
    """:class:`PlanACCheck`'s net with the restoration's sources: substation and island
    grid formers (``{name}_gf`` at the microgrid's bus)."""

    def __init__(self, data: NetworkData) -> None:
        super().__init__(data)
        eg = self.net.ext_grid
        self.substation = eg.index[eg.name == SUBSTATION]
        self.former = {str(n)[: -len("_gf")]: i for i, n in eg.name.items() if n.endswith("_gf")}

    def check(
        self,
        period: RestorationPeriod,
        inp: RestorationInputs,
        dd: DSOData,
        t: int = 0,
    ) -> dict:
        """AC power flow of period ``t`` as planned; keys as :meth:`PlanACCheck.__call__`
        plus ``ac_v_violations`` (energised IEEE buses outside the band in AC)."""
        net = self.net
        for branch, index in self.switch.items():
            net.switch.at[index, "closed"] = branch in period.live_branches
        net.ext_grid.loc[self.substation, "in_service"] = inp.main_grid_available
        for name, index in self.former.items():
            net.ext_grid.at[index, "in_service"] = name in period.grid_formers
        w = withdrawals(period, inp, dd, t)
        for bus, index in self.load.items():
            net.load.at[index, "p_mw"] = w.p_mw.get(bus, 0.0)
            net.load.at[index, "q_mvar"] = w.q_mvar.get(bus, 0.0)
        band = (dd.v_min_pu, dd.v_max_pu)
        v_plan = {b: period.vm_pu[b] for b in period.energised_buses if b in period.vm_pu}
        return compare_with_ac(net, v_plan, period.p_loss_mw, band)
