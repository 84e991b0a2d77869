"""Solving the restoration MILP (:mod:`mgcosim.controllers.restoration`) and reading its plan.

:func:`solve_restoration` solves one event's model to :data:`RESTORATION_LIMITS`, from a MIP
start if one is given (:func:`first_step_start` for a fault's first plan,
:func:`shifted_start` from the previous plan after); :func:`extract_result` reads the plan;
:func:`solve_independent` is the uncoordinated reference (seed 001): every branch joining two
sub-networks held open.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.errors import OptimisationError
from mgcosim.controllers.restoration import build_restoration_model, period_of, relax_look_ahead
from mgcosim.controllers.restoration_data import (
    RestorationInputs,
    RestorationPeriod,
    RestorationResult,
    boundary_branches,
    subnetworks,
)
from mgcosim.controllers.solve import MipLimits, SolveRecord, persistent_highs, solve_mip
from mgcosim.networks.params import NetworkData

# The co-simulation's restoration plans: within 1e-3 of the optimum, less than the value of
# serving the smallest tier-1 load of the IEEE 33 feeder for one 15-min step over any horizon
# under 22.5 h (README, "Faults and restoration"), or the incumbent after 100 branch-and-bound
# nodes, its gap recorded.
RESTORATION_LIMITS = MipLimits(rel_gap=1e-3, node_limit=100)


# --- solve and extract -------------------------------------------------------------------
def solve_restoration(
    model: pyo.ConcreteModel,
    limits: MipLimits = RESTORATION_LIMITS,
    start: ComponentMap | None = None,
    solver=None,
) -> RestorationResult:
    """Solve with HiGHS to the gap of ``limits`` (or its node limit), from the MIP ``start``
    if one is given (see :func:`first_step_start`), and extract the plan. ``solver``: a
    :func:`persistent_highs` that holds ``model`` already (a new one by default).

    Raises :class:`InfeasibleError` when the model has no feasible point and
    :class:`OptimisationError` for any other outcome without a usable solution.
    """
    rec = solve_mip(model, solver or persistent_highs(), "restoration", limits, start)
    return extract_result(model, rec)


def first_step_start(
    model: pyo.ConcreteModel, limits: MipLimits = RESTORATION_LIMITS, solver=None
) -> tuple[ComponentMap, float]:
    """A MIP start for the restoration ``model`` and the seconds it took: ``model`` with
    only its first period integer (the others relaxed for this one solve), solved to
    ``limits``, its first-period decisions held over every integer period.

    The model of one integer period is a fraction of the work; holding its decisions is a
    plan that switches once, at the start. Measured on the plans of ``blackout.toml`` and
    ``fault_midday.toml``, a start lets HiGHS stop at its root instead of searching sub-MIPs
    for a first plan (up to 18 s). An empty start when ``model`` has one integer period or
    the first-period problem has no solution.
    """
    inp: RestorationInputs = model.inp
    integer = inp.integer_periods or inp.n_periods
    if integer <= 1:
        return ComponentMap(), 0.0
    t0 = time.perf_counter()
    relaxed = relax_look_ahead(model, 1)
    try:
        solve_mip(model, solver or persistent_highs(), "restoration first step", limits)
    except OptimisationError:  # InfeasibleError included: the full model then says so
        return ComponentMap(), time.perf_counter() - t0
    finally:
        for var in relaxed:
            var.domain = pyo.Binary
    start = shifted_start(model, plan_decisions(model, n_periods=1), shift=0)
    return start, time.perf_counter() - t0


# a plan's decisions: (variable name, index without the period) -> value per integer period
Decisions = dict[tuple[str, tuple], tuple[float, ...]]


def plan_decisions(model: pyo.ConcreteModel, n_periods: int | None = None) -> Decisions:
    """The solved ``model``'s binary decisions of its first ``n_periods`` (default: its
    integer periods), rounded, for :func:`shifted_start`."""
    inp: RestorationInputs = model.inp
    integer = n_periods or inp.integer_periods or inp.n_periods
    values: dict[tuple[str, tuple], list[float]] = {}
    for var in model.component_data_objects(pyo.Var):
        if var.is_binary() and period_of(var) < integer and var.value is not None:
            key = (var.parent_component().local_name, _without_period(var))
            values.setdefault(key, [math.nan] * integer)[period_of(var)] = float(round(var.value))
    return {key: tuple(v) for key, v in values.items()}


def shifted_start(model: pyo.ConcreteModel, previous: Decisions, shift: int) -> ComponentMap:
    """A MIP start for ``model`` from the ``previous`` plan's decisions, ``shift``
    restoration steps later: integer period t takes the previous plan's period t + shift,
    its last integer period held beyond. Empty when ``shift`` is past the previous plan's
    integer periods. A decision that the previous plan did not have (a bus whose load
    appeared) is left to HiGHS, which completes a partial start."""
    start = ComponentMap()
    inp: RestorationInputs = model.inp
    integer = inp.integer_periods or inp.n_periods
    for var in model.component_data_objects(pyo.Var):
        if not var.is_binary() or var.fixed or period_of(var) >= integer:
            continue
        held = previous.get((var.parent_component().local_name, _without_period(var)))
        if held is None or shift >= len(held):
            continue
        value = held[min(period_of(var) + shift, len(held) - 1)]
        if not math.isnan(value):
            start[var] = value
    return start


def _without_period(var: pyo.Var) -> tuple:
    index = var.index()
    return tuple(index[:-1]) if isinstance(index, tuple) else ()


def extract_result(m: pyo.ConcreteModel, rec: SolveRecord) -> RestorationResult:
    """The plan of a solved model, with the solve's record."""
    inp: RestorationInputs = m.inp
    periods = []
    prev_closed = {
        ln for ln, c in inp.initial_closed.items() if c and ln not in inp.faulted | inp.forced_open
    }
    for t in m.T:
        closed = frozenset(int(ln) for ln in m.L if pyo.value(m.alpha[ln, t]) > 0.5)
        live = frozenset(int(ln) for ln in m.L if pyo.value(m.live[ln, t]) > 0.5)
        energised = frozenset(int(b) for b in m.B if pyo.value(m.energised[b, t]) > 0.5)
        formers = frozenset(str(g) for g in m.M if pyo.value(m.sigma[g, t]) > 0.5)
        sources = {int(m.mg_bus_of[g]) for g in formers}
        if inp.main_grid_available:
            sources.add(int(m.root_bus))
        picked = frozenset(int(b) for b in m.D if pyo.value(m.x[b, t]) > 0.5)
        restored: dict[int, float] = {}
        unserved: dict[int, float] = {}
        for b in m.D:
            target, tier = (restored if b in picked else unserved), m.tiers[b]
            target[tier] = target.get(tier, 0.0) + pyo.value(m.load_p[b, t])
        for tier in set(restored) | set(unserved):
            restored.setdefault(tier, 0.0)
            unserved.setdefault(tier, 0.0)
        mg_load = {g: pyo.value(m.mg_load[g, t]) for g in m.M}
        served = {g: pyo.value(m.served[g, t]) for g in m.M}
        periods.append(
            RestorationPeriod(
                closed_branches=closed,
                live_branches=live,
                energised_buses=energised,
                source_buses=frozenset(sources),
                grid_formers=formers,
                vm_pu={b: math.sqrt(max(pyo.value(m.v[b, t]), 0.0)) for b in sorted(energised)},
                p_loss_mw=sum(r * pyo.value(m.ell[ln, t]) for ln, r in m.r_pu.items()),
                picked_up_buses=picked,
                restored_mw_by_tier=restored,
                unserved_mw_by_tier=unserved,
                mg_restored_mw={g: mg_load[g] * served[g] for g in m.M},
                mg_unserved_mw={g: mg_load[g] * (1 - served[g]) for g in m.M},
                substation_p_mw=pyo.value(m.P0[t]),
                mg_exchange_mw={g: pyo.value(m.mg_bus_pm[g, t]) for g in m.M},
                storage_p_mw={g: pyo.value(m.ch[g, t] - m.dis[g, t]) for g in m.M},
                soc_mwh={g: pyo.value(m.soc[g, t]) for g in m.M},
                mt_p_mw={g: pyo.value(m.mt[g, t]) for g in m.M},
                wind_curtailed_mw={g: pyo.value(m.wind_avail[g, t] - m.wind[g, t]) for g in m.M},
                pv_curtailed_mw={p: pyo.value(m.pv_avail[p, t] - m.pv[p, t]) for p in m.PV},
                switched_closed=frozenset(closed - prev_closed),
                switched_open=frozenset(prev_closed - closed),
                pv_q_mvar={p: pyo.value(m.qpv[p, t]) for p in m.PV},
                mg_exchange_mvar={g: pyo.value(m.mg_bus_qm[g, t]) for g in m.M},
            )
        )
        prev_closed = set(closed)
    actions = sum(len(p.switched_closed) + len(p.switched_open) for p in periods)
    return RestorationResult(
        status=rec.status,
        objective_cny=rec.objective,
        best_bound_cny=rec.bound,
        mip_gap=rec.gap,
        solve_time_s=rec.time_s,
        restored_value_cny=pyo.value(m.restored_value),
        switch_actions=actions,
        periods=tuple(periods),
        mip_nodes=rec.nodes,
    )


# --- the uncoordinated reference ---------------------------------------------------------
def solve_independent(
    dd: DSOData,
    data: NetworkData,
    inp: RestorationInputs,
    limits: MipLimits = RESTORATION_LIMITS,
) -> tuple[RestorationResult, list[set[int]]]:
    """Sub-networks restored without coordination: no power crosses their boundaries.

    One model with every boundary branch forced open: it decomposes into the
    sub-networks' own problems (no shared variable or constraint remains), so its optimum
    is the sum of their separate optima.
    """
    parts = subnetworks(dd, inp.faulted, inp.initial_closed, inp.main_grid_available)
    held = boundary_branches(dd, parts) - inp.faulted
    model = build_restoration_model(dd, data, replace(inp, forced_open=inp.forced_open | held))
    return solve_restoration(model, limits), parts
