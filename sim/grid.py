"""The physical grid: applies set-points, runs pandapower's AC power flow, integrates SOC.

No mosaik here; :mod:`sim.grid_sim` wraps it. One call of :meth:`GridModel.step` per
simulation step at time ``t_s``:

1. storage SOC is integrated from the power actually applied since the previous step
   (piecewise constant), never copied from a plan;
2. the new inputs are applied: loads, available wind/PV (capped by the set-points; a PV's
   reactive power as commanded, within its power factor), turbine and storage set-points
   (storage limited so that the SOC stays in bounds over the coming interval), switch
   states and active faults;
3. the AC power flow runs; a power flow that does not converge is recorded as such
   (``converged = 0``, electrical results NaN) and the run goes on.

A net built with the microgrids' internal networks (``net["mg_internal"]``, see
:mod:`networks.ieee33`) is run the same way on the lumped elements; before every power
flow :mod:`sim.grid_internal` spreads their values over the internal units and loads (loads
by priority tier). An island's grid former then sits on a turbine bus away from the storage,
so its dispatch is settled by re-running the power flow (:meth:`GridModel._settle_islands`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.topology as top

from mgcosim.networks.ieee33 import INTERNAL_KEY, SUBSTATION, load_q_per_p, q_of
from mgcosim.networks.params import MessUnit, MicrogridParams, NetworkData, q_per_p
from mgcosim.networks.powerflow import blackout, has_source, run_power_flow
from mgcosim.networks.storage import soc_change_mwh, unit_feasible_power_mw
from mgcosim.networks.topology import line_index
from mgcosim.sim.grid_internal import InternalMicrogrids
from mgcosim.sim.grid_measure import element_index, load_service, load_tiers, measure

SETTLE_TOL_MW = 1e-6  # grid former's slack power left to the units after settling
SETTLE_MAX_RUNS = 5
SUPPORT_MAX_RUNS = 5  # power flows while the other units of an island make up its balance
UFLS_MARGIN_MW = 0.005  # load shed beyond a deficit (the losses change with the flows)


@dataclass
class StorageState:
    """Energy in one storage unit and the power applied since ``t_s``."""

    params: MicrogridParams | MessUnit
    soc_mwh: float
    p_mw: float = 0.0
    t_s: int = 0

    def soc_at(self, t_s: int) -> float:
        dt_h = (t_s - self.t_s) / 3600.0
        p = self.params
        return self.soc_mwh + soc_change_mwh(self.p_mw, p.ess_eta_ch, p.ess_eta_dis, dt_h)

    def apply(self, t_s: int, p_request_mw: float, dt_next_h: float) -> float:
        """Move to ``t_s`` and apply the feasible part of ``p_request_mw``; return it."""
        self.soc_mwh, self.t_s = self.soc_at(t_s), t_s
        self.p_mw = unit_feasible_power_mw(self.params, p_request_mw, self.soc_mwh, dt_next_h)
        return self.p_mw


@dataclass(frozen=True)
class Former:
    """A unit that can energise an island as its slack: a microgrid or a mobile storage.

    ``params`` carries the turbine limit (``mt_p_max_mw``, 0 for a MESS) and the storage
    limits; ``q_max_mvar`` is the converter's reactive limit, checked for MESS only (a
    microgrid's reactive capability is not modelled beyond its PCC).
    """

    name: str
    params: MicrogridParams | MessUnit
    turbine: str | None  # sgen name
    storage: str  # storage name
    q_max_mvar: float = math.inf


MESS_Q_TOL = 0.05  # short-time converter overload accepted before a MESS island collapses


def formers_of(data: NetworkData) -> list[Former]:
    """Every possible grid former: microgrids first, then mobile storage units."""
    out = [Former(mg.name, mg, f"{mg.name}_mt", f"{mg.name}_ess") for mg in data.microgrids]
    return out + [Former(u.name, u, None, u.name, u.ess_q_max_mvar) for u in data.mess]


@dataclass
class GridInputs:
    """What the grid receives in one step (all powers in MW, see ``networks.params``)."""

    load_p_mw: dict[str, float] = field(default_factory=dict)  # load name -> demand
    available_p_mw: dict[str, float] = field(default_factory=dict)  # wind/PV -> available
    setpoints_mw: dict[str, float] = field(default_factory=dict)  # controller set-points
    setpoints_mvar: dict[str, float] = field(default_factory=dict)  # PV reactive power (> 0 out)
    switch_closed: dict[int, bool] | None = None  # IEEE branch -> closed
    faults: list[dict] | None = None  # active faults (None: unchanged)
    served_fraction: dict[str, float] | None = None  # load -> share picked up (None: all)
    grid_formers: list[str] | None = None  # microgrids preferred as island grid formers


class GridModel:
    """pandapower net + storage states; :meth:`step` returns the measured outputs."""

    def __init__(self, net: pp.pandapowerNet, data: NetworkData) -> None:
        self.net = net
        self.data = data
        self.formers = {f.name: f for f in formers_of(data)}
        self.storage = {
            f.storage: StorageState(f.params, f.params.ess_e_init_mwh)
            for f in self.formers.values()
        }
        self.switch_by_branch = {
            int(net.line.at[int(sw.element), "ieee"]): i
            for i, sw in net.switch.iterrows()
            if sw.et == "l" and net.line.at[int(sw.element), "ieee"] > 0
        }
        self.elements = element_index(net)
        self.active_faults: list[dict] = []
        self.mt_p_mw = {f"{mg.name}_mt": 0.0 for mg in data.microgrids}
        self.pv_q_per_p = {pv.name: q_per_p(pv.pf_min) for pv in data.pv}
        self.demand_p_mw = {
            str(n): float(p) for n, p in zip(net.load.name, net.load.p_mw, strict=True)
        }
        self.served_fraction: dict[str, float] = {}
        self.preferred_formers: set[str] = set()  # as commanded (persists until changed)
        self.islands: dict[str, set[int]] = {}  # grid-forming microgrid -> its buses
        self.collapsed: list[str] = []
        self.ufls_shed: set[str] = set()  # loads shed by under-frequency relays this step
        self.internal = InternalMicrogrids(net, net[INTERNAL_KEY]) if INTERNAL_KEY in net else None
        self.parts = self.internal.part_names if self.internal else frozenset()
        self.load_tiers = load_tiers(net, data, self.internal)

    # --- applying inputs -------------------------------------------------------------
    def _apply_loads(self, load_p_mw: dict[str, float], served: dict[str, float] | None) -> None:
        """Demand times the picked-up share (load shedding commands persist until changed)."""
        if served is not None:
            self.served_fraction = {k: float(np.clip(v, 0.0, 1.0)) for k, v in served.items()}
        self.demand_p_mw.update(load_p_mw)
        if self.internal:
            self.demand_p_mw.update(self.internal.demands_mw(self.demand_p_mw))
        for name, demand in self.demand_p_mw.items():
            idx = self.elements["load"][name]
            p = demand * self.served_fraction.get(name, 1.0)
            self.net.load.at[idx, "p_mw"] = p
            self.net.load.at[idx, "q_mvar"] = p * load_q_per_p(self.net, idx)

    def _apply_generation(self, inp: GridInputs) -> None:
        sgen = self.net.sgen
        for name, idx in self.elements["sgen"].items():
            if name in self.parts:  # internal units follow their lumped element
                continue
            cap = inp.setpoints_mw.get(name, math.inf)
            if name in inp.available_p_mw:  # renewable: available power, capped
                p = max(0.0, min(inp.available_p_mw[name], cap))
            else:  # dispatchable turbine
                p = float(np.clip(inp.setpoints_mw.get(name, 0.0), 0.0, sgen.at[idx, "max_p_mw"]))
                self.mt_p_mw[name] = p
            sgen.at[idx, "p_mw"] = p
            sgen.at[idx, "q_mvar"] = self._q_mvar(name, p, inp.setpoints_mvar)

    def _q_mvar(self, name: str, p_mw: float, setpoints_mvar: dict[str, float]) -> float:
        """A PV's commanded reactive power within its power-factor capability at the power it
        produces (``|q| <= tan(acos pf_min) p``); other units (and PV without a command) at
        their fixed power factor."""
        if name in setpoints_mvar and name in self.pv_q_per_p:
            limit = self.pv_q_per_p[name] * p_mw
            return float(np.clip(setpoints_mvar[name], -limit, limit))
        return q_of(p_mw, self._pf(name))

    def _pf(self, sgen_name: str) -> float:
        mg_name, _, kind = sgen_name.rpartition("_")
        for mg in self.data.microgrids:
            if mg.name == mg_name:
                return mg.mt_pf if kind == "mt" else mg.wind_pf
        return 1.0

    def _apply_storage(self, t_s: int, setpoints: dict[str, float], dt_next_h: float) -> None:
        for name, state in self.storage.items():
            p = state.apply(t_s, setpoints.get(name, 0.0), dt_next_h)
            self.net.storage.at[self.elements["storage"][name], "p_mw"] = p

    def _apply_switches(self, switch_closed: dict[int, bool]) -> None:
        for branch, closed in switch_closed.items():
            self.net.switch.at[self.switch_by_branch[int(branch)], "closed"] = bool(closed)

    def _apply_faults(self, faults: list[dict]) -> None:
        self.active_faults = list(faults)
        faulted = {int(f["branch_ieee"]) for f in faults if f.get("kind") == "branch"}
        for branch in self.switch_by_branch:
            self.net.line.at[line_index(self.net, branch), "in_service"] = branch not in faulted
        main_lost = any(f.get("kind") == "main_grid" for f in faults)
        self.net.ext_grid.loc[self.net.ext_grid.name == SUBSTATION, "in_service"] = not main_lost

    def _stop_dark_units(self) -> None:
        """Units on de-energised buses deliver nothing (and storage does not move)."""
        dark = set(self.net.res_bus.index[self.net.res_bus.vm_pu.isna()])
        for name, idx in self.elements["sgen"].items():
            if int(self.net.sgen.at[idx, "bus"]) in dark:
                self.net.sgen.loc[idx, ["p_mw", "q_mvar"]] = 0.0
                if name in self.mt_p_mw:
                    self.mt_p_mw[name] = 0.0
        for name, idx in self.elements["storage"].items():
            if int(self.net.storage.at[idx, "bus"]) in dark:
                self.net.storage.at[idx, "p_mw"] = 0.0
                if name in self.storage:
                    self.storage[name].p_mw = 0.0

    # --- islanded operation ------------------------------------------------------------
    def _form_islands(self, t_s: int, dt_next_h: float) -> None:
        """Switch in one grid-forming source per island left without a source.

        An island (a connected part of the network) that the substation does not reach is
        energised by the microgrid or mobile storage in it that the controller named as grid
        former, else by the one with the largest available power (turbine maximum plus
        feasible storage discharge); its turbine and storage then follow the island's
        balance (they become the slack), see :meth:`_dispatch_grid_formers`.
        """
        net = self.net
        gf = net.ext_grid.name != SUBSTATION
        net.ext_grid.loc[gf, "in_service"] = False
        self.islands = {}
        graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
        main = set(net.ext_grid.bus[(net.ext_grid.name == SUBSTATION) & net.ext_grid.in_service])
        for component in nx.connected_components(graph):
            if component & main:
                continue
            candidates = [
                f
                for f in self.formers.values()
                if self._former_bus(f.name) in component and self._capacity(f, dt_next_h) > 0
            ]
            if not candidates:
                continue
            best = max(
                candidates,
                key=lambda f: (f.name in self.preferred_formers, self._capacity(f, dt_next_h)),
            )
            net.ext_grid.loc[net.ext_grid.name == f"{best.name}_gf", "in_service"] = True
            self.islands[best.name] = set(component)
            self._hand_to_slack(best.name)

    def _former_bus(self, name: str) -> int:
        """The bus of a grid former's (out-of-service) ``ext_grid`` ``{name}_gf``."""
        return int(self.net.ext_grid.bus[self.net.ext_grid.name == f"{name}_gf"].iloc[0])

    def _capacity(self, former: Former, dt_h: float) -> float:
        """Largest power a grid former can deliver over the next ``dt_h``."""
        state = self.storage[former.storage]
        discharge = -unit_feasible_power_mw(former.params, -1e9, state.soc_mwh, dt_h)
        return former.params.mt_p_max_mw + discharge

    def _hand_to_slack(self, name: str) -> None:
        """The grid former's turbine and storage set-points give way to the slack."""
        former = self.formers[name]
        if former.turbine is not None:
            self.net.sgen.at[self.elements["sgen"][former.turbine], "p_mw"] = 0.0
            self.net.sgen.at[self.elements["sgen"][former.turbine], "q_mvar"] = 0.0
        self.net.storage.at[self.elements["storage"][former.storage], "p_mw"] = 0.0

    def _dispatch_grid_formers(self, t_s: int, dt_next_h: float) -> str:
        """Share each grid former's island need: turbine first, then storage.

        The need is the slack power plus what the turbine and storage already deliver
        (nothing after :meth:`_hand_to_slack`, the dispatch of a previous run when settling).
        In an island the controller formed (its grid former commanded), what the grid former
        cannot deliver (or absorb) the island's other microgrids and mobile storage make up
        beyond their set-points, and a deficit left is shed by priority (:meth:`_support`:
        the island's secondary control and under-frequency load shedding within the step);
        the power flow is then run again (``"supported"``). An island nobody commanded
        (unplanned islanding) has only its grid former.

        Returns ``"collapsed"`` when an island needs more (or must absorb more) than all its
        units together can, or more reactive power than a mobile storage's converter gives
        (beyond ``MESS_Q_TOL``): that island collapses (its source is switched out) and the
        power flow is run again without it. Else ``"ok"``.
        """
        outcome = "ok"
        for name in list(self.islands):
            former = self.formers[name]
            row = self.net.ext_grid.index[self.net.ext_grid.name == f"{name}_gf"][0]
            ess_idx = self.elements["storage"][former.storage]
            delivered = -float(self.net.storage.at[ess_idx, "p_mw"])
            if former.turbine is not None:
                delivered += float(self.net.sgen.at[self.elements["sgen"][former.turbine], "p_mw"])
            p = float(self.net.res_ext_grid.at[row, "p_mw"]) + delivered
            q = float(self.net.res_ext_grid.at[row, "q_mvar"])
            mt = float(np.clip(p, 0.0, former.params.mt_p_max_mw))
            ess = self.storage[former.storage].apply(t_s, -(p - mt), dt_next_h)  # charging > 0
            q_ok = abs(q) <= former.q_max_mvar * (1 + MESS_Q_TOL)
            short_mw = p - (mt - ess)  # > 0: more than the former can give, < 0: absorb
            planned = name in self.preferred_formers  # an island the controller formed
            supported = (
                abs(short_mw) > 1e-6
                and q_ok
                and planned
                and self._support(name, short_mw, t_s, dt_next_h)
            )
            if (abs(short_mw) > 1e-6 and not supported) or not q_ok:
                self.net.ext_grid.at[row, "in_service"] = False
                self.collapsed.append(name)
                del self.islands[name]
                outcome = "collapsed"
                continue
            if supported and outcome == "ok":
                outcome = "supported"
            if former.turbine is not None:
                self.mt_p_mw[former.turbine] = mt
                self.net.sgen.at[self.elements["sgen"][former.turbine], "p_mw"] = mt
            self.net.storage.at[ess_idx, "p_mw"] = ess
        return outcome

    def _support(self, former_name: str, short_mw: float, t_s: int, dt_next_h: float) -> bool:
        """The island's secondary control (:meth:`_secondary_control`) and, for a deficit it
        leaves, under-frequency load shedding (:meth:`_shedding`). Applied only when the two
        cover all of ``short_mw``; returns whether they do."""
        others, changes, left_mw = self._secondary_control(former_name, short_mw, t_s, dt_next_h)
        shed = self._shedding(former_name, left_mw) if left_mw > 1e-6 else []
        if abs(left_mw) > 1e-6 and not shed:
            return False
        for idx in shed:  # for this step only
            self.net.load.loc[idx, ["p_mw", "q_mvar"]] = 0.0
            self.ufls_shed.add(str(self.net.load.at[idx, "name"]))
        for table, idx, new in changes:
            self.net[table].at[idx, "p_mw"] = new
        for f in others:
            if f.turbine is not None:
                self.mt_p_mw[f.turbine] = float(
                    self.net.sgen.at[self.elements["sgen"][f.turbine], "p_mw"]
                )
            p_mw = float(self.net.storage.at[self.elements["storage"][f.storage], "p_mw"])
            self.storage[f.storage].apply(t_s, p_mw, dt_next_h)
        return True

    def _secondary_control(
        self, former_name: str, short_mw: float, t_s: int, dt_next_h: float
    ) -> tuple[list[Former], list[tuple[str, int, float]], float]:
        """How the island's other microgrids and mobile storage take ``short_mw`` (> 0: raise
        their output, < 0: lower it) beyond their set-points: turbines first, then storage,
        in name order, each within its limits. Returns those units, the changes (table,
        index, new p_mw) and the MW they leave; nothing is applied."""
        sgen, storage = self.net.sgen, self.net.storage
        buses = self.islands[former_name]
        others = [f for f in self.formers.values() if f.name != former_name]
        others = [f for f in others if self._former_bus(f.name) in buses]
        changes: list[tuple[str, int, float]] = []
        left = short_mw
        for f in others:  # turbines: 0 .. their maximum
            if f.turbine is None or abs(left) <= 1e-9:
                continue
            idx = self.elements["sgen"][f.turbine]
            now = float(sgen.at[idx, "p_mw"])
            new = float(np.clip(now + left, 0.0, f.params.mt_p_max_mw))
            changes.append(("sgen", idx, new))
            left -= new - now
        for f in others:  # storage (charging > 0): within its power and energy limits
            if abs(left) <= 1e-9:
                break
            idx = self.elements["storage"][f.storage]
            now = float(storage.at[idx, "p_mw"])
            state = self.storage[f.storage]
            new = unit_feasible_power_mw(f.params, now - left, state.soc_at(t_s), dt_next_h)
            changes.append(("storage", idx, new))
            left -= now - new
        return others, changes, left

    def _shedding(self, former_name: str, deficit_mw: float) -> list[int]:
        """Under-frequency load shedding: the island's loads to drop for this step so that
        at least ``deficit_mw`` (plus ``UFLS_MARGIN_MW``) goes. Whole loads (relays trip
        feeders), lowest priority tier first; of the last tier needed, the smallest load
        that covers the rest, else the largest ones. Empty when the island's loads do not
        reach it, or with the microgrids' internal networks (their loads follow the lumped
        ones)."""
        if self.internal:
            return []
        load = self.net.load
        buses = self.islands[former_name]
        p_mw = {
            int(i): float(load.at[i, "p_mw"])
            for i in load.index
            if int(load.at[i, "bus"]) in buses and load.at[i, "p_mw"] > 0
        }
        tier = {i: self.load_tiers.get(str(load.at[i, "name"]), 3) for i in p_mw}
        need = deficit_mw + UFLS_MARGIN_MW
        shed: list[int] = []
        for t in sorted(set(tier.values()), reverse=True):  # tier 3 first
            left = need - sum(p_mw[i] for i in shed)
            if left <= 0:
                break
            group = sorted((i for i in p_mw if tier[i] == t), key=lambda i: (-p_mw[i], i))
            if sum(p_mw[i] for i in group) <= left:
                shed += group
                continue
            enough = [i for i in group if p_mw[i] >= left]
            if enough:
                shed.append(min(enough, key=lambda i: (p_mw[i], i)))
                continue
            for i in group:  # the largest until the rest is covered
                shed.append(i)
                if sum(p_mw[k] for k in shed) >= need:
                    break
        return shed if sum(p_mw[i] for i in shed) >= need else []

    def _balance_islands(self, t_s: int, dt_next_h: float) -> bool:
        """Dispatch the grid formers; run the power flow again after a collapse (without
        that island) or after other units made up a grid former's balance (until the grid
        former alone holds it). Returns whether the last power flow converged."""
        for _ in range(SUPPORT_MAX_RUNS):
            outcome = self._dispatch_grid_formers(t_s, dt_next_h)
            if outcome == "ok":
                return True
            converged = self._power_flow()
            if outcome == "collapsed" or not (converged and self.islands):
                return converged
        return converged

    def _settle_islands(self, t_s: int, dt_next_h: float) -> bool:
        """Internal networks: re-run until the dispatched units, not the slack, feed the islands.

        The slack of an internal island sits at its largest turbine's bus, the dispatched
        storage elsewhere, so moving power from the slack to the units changes the internal
        losses a little; each run hands that change to the units again.
        """
        for _ in range(SETTLE_MAX_RUNS):
            converged = self._power_flow()
            if not (converged and self.islands) or self._slack_mw() <= SETTLE_TOL_MW:
                return converged
            self._dispatch_grid_formers(t_s, dt_next_h)
        return self._power_flow()

    def _slack_mw(self) -> float:
        """Largest |P| still delivered by a grid former's slack."""
        rows = self.net.ext_grid.index[
            self.net.ext_grid.name.isin([f"{name}_gf" for name in self.islands])
        ]
        return float(self.net.res_ext_grid.loc[rows, "p_mw"].abs().max())

    # --- one step -------------------------------------------------------------------
    def step(self, t_s: int, dt_next_s: int, inp: GridInputs) -> dict:
        """Apply ``inp`` at ``t_s`` for the coming ``dt_next_s`` and run the AC power flow."""
        soc_now = {name: s.soc_at(t_s) for name, s in self.storage.items()}
        dt_h = dt_next_s / 3600.0
        self._apply_loads(inp.load_p_mw, inp.served_fraction)
        self._apply_generation(inp)
        self._apply_storage(t_s, inp.setpoints_mw, dt_h)
        if inp.switch_closed is not None:
            self._apply_switches(inp.switch_closed)
        if inp.faults is not None:
            self._apply_faults(inp.faults)
        if inp.grid_formers is not None:
            self.preferred_formers = set(inp.grid_formers)
        self.collapsed, self.ufls_shed = [], set()
        self._form_islands(t_s, dt_h)
        converged = self._power_flow()
        if converged and self.islands:
            converged = self._balance_islands(t_s, dt_h)
        if converged and self.islands and self.internal:
            converged = self._settle_islands(t_s, dt_h)
        if converged:
            self._stop_dark_units()
        out = measure(self.net, self.data, converged, soc_now, self.elements)
        out["soc_end_mwh"] = {n: s.soc_at(t_s + dt_next_s) for n, s in self.storage.items()}
        out["mt_p_mw"] = dict(self.mt_p_mw)
        out["active_faults"] = [str(f.get("name", "")) for f in self.active_faults]
        out["islands"] = sorted(self.islands)
        out["islands_collapsed"] = list(self.collapsed)
        out["loads_shed_ufls"] = sorted(self.ufls_shed)
        out.update(
            load_service(self.net, converged, self.demand_p_mw, self.elements, self.load_tiers)
        )
        return out

    def _power_flow(self) -> bool:
        if self.internal:
            self.internal.spread(self.net, self.demand_p_mw)
        return run_power_flow(self.net) if has_source(self.net) else blackout(self.net)
