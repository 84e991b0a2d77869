"""Service restoration: the centralised MILP and the uncoordinated (independent) reference.

Real HiGHS solves on the IEEE 33-bus net with microgrids MG1/MG2/MG3 at buses 2/11/27.
Tier-1 loads: buses 6, 9, 16, 18, 28 (0.06 + 0.06 + 0.06 + 0.09 + 0.06 = 0.33 MW nominal).
"""

from __future__ import annotations

import copy
import dataclasses

import networkx as nx
import pyomo.environ as pyo
import pytest

from mgcosim.controllers.restoration import build_restoration_model, period_of
from mgcosim.controllers.restoration_controller import (
    RestorationController,
    plan_from_result,
    tight_plan,
)
from mgcosim.controllers.restoration_data import (
    RestorationInputError,
    RestorationResult,
    boundary_branches,
    nominal_inputs,
    subnetworks,
)
from mgcosim.controllers.restoration_solve import (
    RESTORATION_LIMITS,
    first_step_start,
    plan_decisions,
    shifted_start,
    solve_independent,
    solve_restoration,
)
from mgcosim.controllers.solve import MipLimits, persistent_highs
from mgcosim.networks.topology import bus_ieee, energised_buses, is_radial, switch_of_branch

CUT_OFF = {13, 14, 15, 16, 17, 18}  # buses cut off by a fault on branch 12 (12-13)
TIER1 = {6, 9, 16, 18, 28}
TIE_INTO_CUT_OFF = {34, 36}  # 9-15, 18-33: the ties that can feed buses 13-18
N_PERIODS = 4
GAP = 1e-4
LIMITS = MipLimits(rel_gap=GAP, node_limit=20_000)  # proven to GAP in these cases


@pytest.fixture(scope="module")
def branch12(dd, data):
    """Fault on branch 12, main grid available: centralised and independent solves."""
    inp = nominal_inputs(dd, data, n_periods=N_PERIODS, faulted={12}, main_grid_available=True)
    central = solve_restoration(build_restoration_model(dd, data, inp), LIMITS)
    independent, parts = solve_independent(dd, data, inp, LIMITS)
    return inp, central, independent, parts


@pytest.fixture(scope="module")
def islanded(dd, data):
    """Seed 003 event: branches 12 (12-13) and 22 (3-23) damaged and the main grid lost."""
    inp = nominal_inputs(dd, data, n_periods=2, faulted={12, 22}, main_grid_available=False)
    model = build_restoration_model(dd, data, inp)
    return inp, model, solve_restoration(model, LIMITS)


def net_with(base_net, closed: frozenset[int], main_grid: bool):
    """A copy of the pandapower net with the IEEE branches' switches set as planned."""
    net = copy.deepcopy(base_net)
    for ln in range(1, 38):
        net.switch.at[switch_of_branch(net, ln), "closed"] = ln in closed
    net.ext_grid["in_service"] = main_grid
    return net


def components_and_sources(dd, period) -> list[tuple[set[int], set[int]]]:
    """Components (IEEE buses) joined by the plan's live branches, with their sources."""
    br = {b.ieee: b for b in dd.branches}
    graph = nx.Graph()
    graph.add_nodes_from(period.energised_buses)
    graph.add_edges_from((br[ln].from_bus, br[ln].to_bus) for ln in period.live_branches)
    return [(set(c), set(c) & period.source_buses) for c in nx.connected_components(graph)]


def check_configuration(dd, base_net, result: RestorationResult, main_grid: bool) -> None:
    """Radial, every energised bus reached from exactly one source, dead closed branches idle."""
    br = {b.ieee: b for b in dd.branches}
    for period in result.periods:
        net = net_with(base_net, period.closed_branches, main_grid)
        assert is_radial(net)
        for comp, sources in components_and_sources(dd, period):
            assert len(sources) == 1, (comp, sources)
        for ln in period.closed_branches - period.live_branches:  # dead closed branches
            assert br[ln].from_bus not in period.energised_buses
            assert br[ln].to_bus not in period.energised_buses
        assert period.picked_up_buses <= period.energised_buses
        if main_grid:  # pandapower agrees on what the substation energises
            live = {bus_ieee(net, i) for i in energised_buses(net)} - {0}
            grid_fed = next(c for c, s in components_and_sources(dd, period) if dd.root in s)
            assert grid_fed == live


def tier_mw(result: RestorationResult, tier: int, t: int, what: str = "restored") -> float:
    period = result.periods[t]
    table = period.restored_mw_by_tier if what == "restored" else period.unserved_mw_by_tier
    return table.get(tier, 0.0)


# --- branch 12 faulted, main grid available ----------------------------------------------
def test_subnetworks_of_branch12(dd, branch12):
    inp, _, _, parts = branch12
    assert parts == subnetworks(dd, {12}, inp.initial_closed, True)
    assert len(parts) == 2
    assert dd.root in parts[0]  # normal sub-network first
    assert parts[1] == CUT_OFF
    # boundary: the faulted branch and the ties into buses 13-18 (34: 9-15, 36: 18-33)
    assert boundary_branches(dd, parts) == {12} | TIE_INTO_CUT_OFF


def test_centralised_restores_all_tier1_through_a_tie(dd, base_net, branch12):
    _, central, _, _ = branch12
    assert central.status == "optimal"
    assert central.mip_gap <= GAP + 1e-9
    first = central.periods[0]
    # one tie into the cut-off area closes at once (34 and 36 may tie: either is accepted);
    # nothing else switches (80 CNY per action; forcing a second action costs >= 63 CNY
    # more at the solver's bound, and leaving any bus dead 84 CNY more: unique counts)
    assert len(first.switched_closed & TIE_INTO_CUT_OFF) == 1
    assert central.switch_actions == 1
    assert 12 not in first.closed_branches
    for t in range(N_PERIODS):
        assert tier_mw(central, 1, t, "unserved") == pytest.approx(0.0, abs=1e-9)
        assert tier_mw(central, 1, t) == pytest.approx(0.33)
        assert central.periods[t].energised_buses == set(dd.buses)
    check_configuration(dd, base_net, central, main_grid=True)


def test_independent_sheds_the_cut_off_area(dd, base_net, branch12):
    """Hand check: buses 13-18 hold no microgrid (they sit at 2, 11, 27) and PV_b18 is not
    grid-forming, so with ties 34/36 held open nothing can energise them: their 0.45 MW
    (tier 1: buses 16 + 18 = 0.06 + 0.09 = 0.15 MW; tier 2: bus 14, 0.12 MW; tier 3: buses
    13, 15, 17, 0.18 MW) stays unserved every period,
    while the normal sub-network is served in full. The centralised model may still close
    34 or 36, so its objective is at least as good; here strictly better by the value of
    the cut-off loads minus one switching action:
    1000 CNY x 0.25 h x 4 periods x (100 x 0.15 + 10 x 0.12 + 0.2 x 0.18) - 80 CNY.,
        less the cost of the extra losses of carrying 0.45 MW to them (500 CNY/MWh: some
        16 CNY for ~32 kW over the hour; bounded here by 40 CNY, i.e. 80 kW)"""
    _, central, independent, _ = branch12
    assert independent.status == "optimal"
    for t in range(N_PERIODS):
        period = independent.periods[t]
        assert not (period.energised_buses & CUT_OFF)
        assert not (period.closed_branches & TIE_INTO_CUT_OFF)
        assert tier_mw(independent, 1, t, "unserved") == pytest.approx(0.15)
        assert sum(period.unserved_mw_by_tier.values()) == pytest.approx(0.45)
        assert {16, 18}.isdisjoint(period.picked_up_buses)
    assert independent.switch_actions == 0
    check_configuration(dd, base_net, independent, main_grid=True)
    gain = 1000 * 0.25 * N_PERIODS * (100 * 0.15 + 10 * 0.12 + 0.2 * 0.18) - 80
    assert central.objective_cny <= independent.objective_cny + 1e-6
    extra_loss_cost = gain - (independent.objective_cny - central.objective_cny)
    assert 0.0 < extra_loss_cost < 40.0


# --- main grid lost: islands around microgrids -------------------------------------------
def test_main_grid_lost_islands_one_source_each(dd, base_net, data, islanded):
    inp, _, result = islanded
    assert result.status == "optimal"
    check_configuration(dd, base_net, result, main_grid=False)
    mg_bus = {mg.bus_ieee for mg in data.microgrids}
    for t, period in enumerate(result.periods):
        assert period.substation_p_mw == pytest.approx(0.0, abs=1e-9)
        assert period.source_buses <= mg_bus
        assert not period.closed_branches & {12, 22}
        # hand check: what the microgrids can produce (turbine max + storage discharge max
        # + available wind = 1.2 + 0.75 + 1.2 MW) bounds all load served, theirs included
        capacity = sum(
            mg.params.mt_p_max_mw + mg.params.ess_p_dis_max_mw + mg.wind_mw[t]
            for mg in inp.microgrids.values()
        )
        assert capacity == pytest.approx(3.15)
        served = sum(period.restored_mw_by_tier.values()) + sum(period.mg_restored_mw.values())
        assert served <= capacity + 1e-6
        # energy balance: DSO loads = exported by microgrids - losses (PV off here); the
        # islands' estimated losses stay within 5 % of what they carry
        restored = sum(period.restored_mw_by_tier.values())
        exported = -sum(period.mg_exchange_mw.values())
        assert restored <= exported + 1e-6
        assert exported - restored <= 0.05 * exported
        # seed 003: all tier-1 loads restored (0.33 MW, well within the capacity)
        assert tier_mw(result, 1, t) == pytest.approx(0.33)
        for name, mg in inp.microgrids.items():
            assert mg.params.ess_e_min_mwh - 1e-9 <= period.soc_mwh[name]
            assert period.soc_mwh[name] <= mg.params.ess_e_max_mwh + 1e-9
            assert 0 <= period.mt_p_mw[name] <= mg.params.mt_p_max_mw + 1e-9


def test_no_possible_source_sheds_everything(dd, data):
    """Main grid lost and every PCC limit 0: no power can reach a DSO load."""
    mgs = tuple(dataclasses.replace(mg, pcc_p_max_mw=0.0) for mg in data.microgrids)
    inp = nominal_inputs(
        dd, data, n_periods=N_PERIODS, faulted={12}, main_grid_available=False, microgrids=mgs
    )
    result = solve_restoration(build_restoration_model(dd, data, inp), LIMITS)
    assert result.status == "optimal"
    for period in result.periods:
        assert sum(period.restored_mw_by_tier.values()) == pytest.approx(0.0, abs=1e-9)
        assert sum(period.unserved_mw_by_tier.values()) == pytest.approx(
            sum(dd.load_p_nom_mw.values())
        )
        assert not period.picked_up_buses
        assert all(abs(p) < 1e-9 for p in period.mg_exchange_mw.values())
        # the microgrids still serve their own loads from their own units
        assert sum(period.mg_restored_mw.values()) == pytest.approx(1.5)
    assert result.switch_actions == 0


def test_storage_never_charges_and_discharges_at_once(islanded):
    _, model, result = islanded
    for g in model.M:
        for t in model.T:
            assert min(pyo.value(model.ch[g, t]), pyo.value(model.dis[g, t])) <= 1e-9
            net = pyo.value(model.ch[g, t] - model.dis[g, t])
            assert result.periods[t].storage_p_mw[g] == pytest.approx(net)


def test_bad_inputs_are_named(dd, data):
    inp = nominal_inputs(dd, data, n_periods=2, faulted={99}, main_grid_available=True)
    with pytest.raises(RestorationInputError, match="faulted"):
        build_restoration_model(dd, data, inp)
    inp = nominal_inputs(dd, data, n_periods=2, faulted={12}, main_grid_available=True)
    short = dataclasses.replace(inp, n_periods=3)
    with pytest.raises(RestorationInputError, match="3 periods"):
        build_restoration_model(dd, data, short)


def test_look_ahead_periods_have_their_own_length_and_are_relaxed(dd, data):
    """A 15-min period, then a 1-h look-ahead period: storage energy changes by power times
    each period's own length (hand calculation from the SOC dynamics), and only the first
    period keeps integer decisions."""
    inp = nominal_inputs(dd, data, n_periods=2, faulted={12, 22}, main_grid_available=False)
    inp = dataclasses.replace(inp, period_h=(0.25, 1.0), integer_periods=1)
    model = build_restoration_model(dd, data, inp)
    assert all(model.x[b, 0].is_binary() for b in model.D)
    assert not any(model.x[b, 1].is_binary() for b in model.D)
    free = [v for v in model.component_data_objects(pyo.Var) if not v.fixed]
    assert not any(v.is_binary() for v in free if period_of(v) == 1)
    assert sum(v.is_binary() for v in free if period_of(v) == 0) > 100
    assert all(0 <= model.x[b, 1].lb and model.x[b, 1].ub <= 1 for b in model.D)
    result = solve_restoration(model, LIMITS)
    assert result.status == "optimal"
    for g, mg in inp.microgrids.items():
        p = mg.params
        soc = [mg.soc_mwh] + [period.soc_mwh[g] for period in result.periods]
        for t, hours in enumerate((0.25, 1.0)):
            ch, dis = pyo.value(model.ch[g, t]), pyo.value(model.dis[g, t])
            change = (ch * p.ess_eta_ch - dis / p.ess_eta_dis) * hours
            assert soc[t + 1] - soc[t] == pytest.approx(change, abs=1e-7)
    # the plan holds the look-ahead period's set-points over its four 15-min steps
    plan = plan_from_result(result, inp, data, 0, 0.25, {})
    mt = plan.setpoints_mw["MG1_mt"]
    assert len(mt) == 5 and mt[1:] == pytest.approx([result.periods[1].mt_p_mw["MG1"]] * 4)


def test_controller_plans_the_first_hour_in_steps_then_hourly(data, base_net):
    ctrl = RestorationController(data, base_net)  # 15-min steps, fine_h 1, hourly look-ahead
    assert ctrl.period_steps(12) == [1, 1, 1, 1, 4, 4]
    assert ctrl.period_steps(9) == [1, 1, 1, 1, 4, 1]
    assert ctrl.period_steps(3) == [1, 1, 1]
    assert RestorationController(data, base_net, fine_h=None).period_steps(6) == [1] * 6


def test_period_lengths_must_fit_the_horizon(dd, data):
    inp = nominal_inputs(dd, data, n_periods=2, faulted={12}, main_grid_available=True)
    with pytest.raises(RestorationInputError, match="period_h"):
        build_restoration_model(dd, data, dataclasses.replace(inp, period_h=(0.25,)))
    with pytest.raises(RestorationInputError, match="integer_periods"):
        build_restoration_model(dd, data, dataclasses.replace(inp, integer_periods=0))


def test_one_solver_per_plan_gives_the_plan_of_fresh_solvers(dd, data):
    """The controller loads a plan's MILP into HiGHS once: the first-step start and the
    plan share one persistent solver, which then only pushes changes. The plan is the one
    that a fresh solver for each solve gives (the same decisions in every period; the
    dispatch refined on exact losses within the LP tolerance)."""
    inp = nominal_inputs(dd, data, n_periods=2, faulted={12, 22}, main_grid_available=False)
    limits = dataclasses.replace(RESTORATION_LIMITS, rel_gap=0.01)  # any gap: 1 % is quick

    def plan(solver):
        model = build_restoration_model(dd, data, inp)
        start, start_s = first_step_start(model, limits, solver)
        info: dict = {}
        result = tight_plan(model, dd, limits, info, start, start_s, solver)
        return model, result, info

    solver = persistent_highs()
    loads = []
    load = solver.set_instance
    solver.set_instance = lambda model: loads.append(model) or load(model)
    shared_model, shared, info = plan(solver)
    _, fresh, fresh_info = plan(None)
    assert loads == [shared_model]  # loaded once
    assert (
        info["loss_refine"].startswith("optimal")
        and fresh_info["loss_refine"] == info["loss_refine"]
    )
    decisions = ("closed_branches", "energised_buses", "picked_up_buses", "grid_formers")
    for a, b in zip(shared.periods, fresh.periods, strict=True):
        assert all(getattr(a, name) == getattr(b, name) for name in decisions)
        assert a.p_loss_mw == pytest.approx(b.p_loss_mw, rel=1e-5, abs=1e-7)
    assert shared.objective_cny == pytest.approx(fresh.objective_cny, rel=1e-7)


def test_shifted_start_is_the_previous_plan_one_step_on(dd, data):
    """The next plan's MIP start: integer period t takes the previous plan's period t + 1,
    its last integer period held; nothing past the previous plan's integer periods."""
    inp = nominal_inputs(dd, data, n_periods=3, faulted={12}, main_grid_available=True)
    solved = build_restoration_model(dd, data, inp)
    solve_restoration(solved, RESTORATION_LIMITS)
    decisions = plan_decisions(solved)
    alpha = {ln: decisions[("alpha", (ln,))] for ln in solved.L}
    assert alpha[12] == (0.0, 0.0, 0.0)  # the faulted branch is open
    assert all(
        v == round(pyo.value(solved.alpha[ln, t])) for ln in alpha for t, v in enumerate(alpha[ln])
    )
    model = build_restoration_model(dd, data, inp)
    start = shifted_start(model, decisions, 1)
    free = [v for v in model.component_data_objects(pyo.Var) if v.is_binary() and not v.fixed]
    assert len(start) == len(free)
    for var in free:
        held = decisions[(var.parent_component().local_name, tuple(var.index()[:-1]))]
        assert start[var] == held[min(period_of(var) + 1, 2)]
    assert len(shifted_start(model, decisions, 3)) == 0  # past the previous plan


def test_first_step_start_holds_the_first_periods_decisions(dd, data):
    """The MIP start: the event with only its first period integer, its period-0 decisions
    repeated over every integer period; the plan solved from it is optimal and radial."""
    inp = nominal_inputs(dd, data, n_periods=2, faulted={12, 22}, main_grid_available=False)
    model = build_restoration_model(dd, data, inp)
    start, seconds = first_step_start(model, LIMITS)
    assert seconds > 0
    free = [v for v in model.component_data_objects(pyo.Var) if v.is_binary() and not v.fixed]
    assert len(start) == len(free)
    for var in free:
        index = var.index()
        first = var.parent_component()[(*index[:-1], 0)]
        assert start[var] == start[first] and start[var] in (0.0, 1.0)
    result = solve_restoration(model, LIMITS, start)
    assert result.status == "optimal" and result.mip_gap <= GAP
    for period in result.periods:
        assert sum(period.restored_mw_by_tier.values()) > 0
    one = build_restoration_model(dd, data, dataclasses.replace(inp, integer_periods=1))
    none, no_time = first_step_start(one)
    assert len(none) == 0 and no_time == 0.0  # one integer period: nothing to start from


def test_unknown_branches_are_refused_by_field(dd, data):
    """IEEE 33 has branches 1..37: 38 and 99 are named in the refusal, with the field."""
    inp = nominal_inputs(dd, data, n_periods=1, faulted={12, 99, 38}, main_grid_available=True)
    with pytest.raises(RestorationInputError, match=r"^faulted: unknown IEEE branches \[38, 99\]$"):
        build_restoration_model(dd, data, inp)
    held = dataclasses.replace(inp, faulted=frozenset({12}), forced_open=frozenset({40}))
    with pytest.raises(RestorationInputError, match=r"^forced_open: unknown IEEE branches \[40\]$"):
        build_restoration_model(dd, data, held)
