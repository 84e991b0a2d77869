"""GridModel with real pandapower power flows, the rule-based controller and step costs.

Physical step 900 s throughout. Hand calculations use the built-in data files
(``networks/data``); the tests assert the data values they rely on.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from mgcosim.controllers.base import Forecasts, Measurements
from mgcosim.controllers.rule_based import RuleBasedController
from mgcosim.networks.ieee33 import q_of
from mgcosim.networks.storage import soc_change_mwh
from mgcosim.sim.accounting import price_at, step_costs
from mgcosim.sim.grid import GridInputs, GridModel

STEP_S = 900
DT_H = STEP_S / 3600.0  # 0.25 h
IEEE_BUSES = [str(b) for b in range(1, 34)]
MG1_LOAD = {"MG1_load": 0.5}  # MG1 peak demand in microgrids.csv


@pytest.fixture
def new_model(base_net, data):
    return lambda: GridModel(copy.deepcopy(base_net), data)


@pytest.fixture
def model(new_model):
    return new_model()


def test_data_used_by_hand_calculations(data):
    mg1 = data.microgrid("MG1")
    assert (mg1.ess_eta_ch, mg1.ess_eta_dis) == (0.95, 0.95)
    assert (mg1.ess_e_min_mwh, mg1.ess_e_init_mwh, mg1.ess_e_max_mwh) == (0.1, 0.5, 1.0)
    assert (mg1.ess_p_ch_max_mw, mg1.ess_p_dis_max_mw) == (0.25, 0.25)
    assert (mg1.mt_p_min_mw, mg1.mt_p_max_mw, mg1.mt_ramp_mw_per_h) == (0.05, 0.4, 0.2)
    assert mg1.load_p_peak_mw == 0.5


# --- storage ---------------------------------------------------------------------------------


def test_soc_integration_by_hand(model):
    requests = [0.2] * 4 + [-0.2] * 4
    # hand: +0.95 * 0.2 * 0.25 = 0.0475 MWh per charging step; -0.2 * 0.25 / 0.95 per discharge
    soc = 0.5
    outs = []
    for k, p in enumerate(requests):
        out = model.step(k * STEP_S, STEP_S, GridInputs(setpoints_mw={"MG1_ess": p}))
        assert out["converged"] == 1
        assert out["unit_p_mw"]["MG1_ess"] == p  # within every limit: applied as requested
        assert out["soc_mwh"]["MG1_ess"] == pytest.approx(soc, abs=1e-9)  # hand calculation
        soc += 0.95 * p * DT_H if p > 0 else p * DT_H / 0.95
        assert out["soc_end_mwh"]["MG1_ess"] == pytest.approx(soc, abs=1e-9)
        assert out["soc_mwh"]["MG2_ess"] == 0.6  # untouched units keep their initial SOC
        outs.append(out)
    last = model.step(len(requests) * STEP_S, STEP_S, GridInputs())
    outs.append(last)
    assert soc == pytest.approx(0.5 + 4 * 0.0475 - 4 * 0.05 / 0.95, abs=1e-12)  # 0.4794737
    assert last["soc_mwh"]["MG1_ess"] == pytest.approx(soc, abs=1e-9)
    for before, after in zip(outs, outs[1:], strict=False):
        assert before["soc_end_mwh"]["MG1_ess"] == after["soc_mwh"]["MG1_ess"]


def run_storage(model, request_mw, n_steps, t0_step=0):
    """(applied powers, SOC at the end of each step) of MG1_ess for a constant request."""
    applied, soc_end = [], []
    for k in range(t0_step, t0_step + n_steps):
        out = model.step(k * STEP_S, STEP_S, GridInputs(setpoints_mw={"MG1_ess": request_mw}))
        applied.append(out["unit_p_mw"]["MG1_ess"])
        soc_end.append(out["soc_end_mwh"]["MG1_ess"])
    return applied, soc_end


def test_soc_bounds_and_power_limits(model):
    applied, soc_end = run_storage(model, 1.0, 10)
    # hand: 8 steps at p_ch_max 0.25 (+0.059375 MWh each) reach 0.975; the headroom
    # 0.025 MWh then allows 0.025 / (0.95 * 0.25) = 2/19 MW; then nothing.
    expected = [0.25] * 8 + [0.025 / (0.95 * DT_H), 0.0]
    assert applied == pytest.approx(expected, abs=1e-9)
    assert soc_end[8] == pytest.approx(1.0, abs=1e-12)  # float rounding of one mul/div pair
    assert max(soc_end) <= 1.0 + 1e-12
    assert soc_end[9] == soc_end[8]

    applied, soc_end = run_storage(model, -1.0, 15, t0_step=10)
    # hand: 13 steps at p_dis_max (-0.25 * 0.25 / 0.95 MWh each) leave
    # 1.0 - 0.1 - 13 * 0.0625 / 0.95 = 0.0447368 MWh above e_min, i.e. 0.17 MW for one step.
    expected = [-0.25] * 13 + [-0.17, 0.0]
    assert applied == pytest.approx(expected, abs=1e-9)
    assert soc_end[13] == pytest.approx(0.1, abs=1e-12)
    assert min(soc_end) >= 0.1 - 1e-12


# --- generation, exchange, energy balance ---------------------------------------------------


def test_exchange_sign_and_magnitude(model, data):
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=dict(MG1_LOAD), available_p_mw={"MG1_wind": 0.5}, setpoints_mw={"MG1_mt": 0.3}
        ),
    )
    assert out["converged"] == 1
    assert out["unit_p_mw"]["MG1_mt"] == 0.3 and out["mt_p_mw"]["MG1_mt"] == 0.3
    assert out["unit_p_mw"]["MG1_wind"] == 0.5  # no cap: all available wind
    surplus = 0.3 + 0.5 - 0.5
    ex = out["exchange_p_mw"]["MG1"]
    assert ex < 0  # the microgrid exports, its import is negative
    # hand: |I| ~ 0.3 MVA / (sqrt(3) 12.66 kV) = 14 A, 3 I^2 R with R = 0.05 ohm ~ 30 W << 1 kW
    assert ex == pytest.approx(-surplus, abs=1e-3)
    pcc = int(model.net.line.index[model.net.line.name == "MG1_pcc"][0])
    # pandapower consistency: sending-end power = -(export) + PCC line loss (NR tol 1e-8 MVA)
    assert ex == pytest.approx(-surplus + model.net.res_line.pl_mw.at[pcc], abs=1e-6)
    assert out["exchange_p_mw"]["MG2"] == pytest.approx(0.6, abs=1e-3)  # MG2 imports its load


def test_renewable_cap(model):
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            available_p_mw={"MG1_wind": 0.5, "MG2_wind": 0.3, "PV_b18": 0.25},
            setpoints_mw={"MG1_wind": 0.2, "MG2_wind": 0.45, "PV_b18": 0.1},
        ),
    )
    assert out["unit_p_mw"]["MG1_wind"] == 0.2  # capped
    assert out["unit_p_mw"]["MG2_wind"] == 0.3  # cap above availability: available power
    assert out["unit_p_mw"]["PV_b18"] == 0.1
    assert out["unit_p_mw"]["MG1_mt"] == 0.0  # a cap is no turbine set-point
    assert "MG1_wind" not in out["mt_p_mw"]


def test_energy_balance(model, data):
    dso = model.net.load[model.net.load.name.str.startswith("load_b")]
    loads = {name: 0.7 * p for name, p in zip(dso.name, dso.p_nom_mw, strict=True)}
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=loads | {"MG1_load": 0.45, "MG2_load": 0.5, "MG3_load": 0.3},
            available_p_mw={
                "MG1_wind": 0.6,
                "MG2_wind": 0.2,
                "MG3_wind": 0.9,
                "PV_b18": 0.2,
                "PV_b25": 0.15,
                "PV_b33": 0.0,
            },
            setpoints_mw={
                "MG1_mt": 0.1,
                "MG2_mt": 0.3,
                "MG1_ess": 0.2,
                "MG2_ess": -0.15,
                "MG3_ess": 0.05,
            },
        ),
    )
    assert out["converged"] == 1
    net = model.net
    sgen = net.sgen.p_mw[net.sgen.in_service].sum()
    storage = net.storage.p_mw[net.storage.in_service].sum()
    load = net.load.p_mw[net.load.in_service].sum()
    assert out["load_demand_mw"] == pytest.approx(load, abs=1e-12)
    assert out["p_loss_mw"] == pytest.approx(net.res_line.pl_mw.sum(), abs=1e-12)
    assert sum(out["unit_p_mw"][n] for n in net.sgen.name) == pytest.approx(sgen, abs=1e-12)
    # pandapower consistency: NR mismatch tolerance 1e-8 MVA per bus, 36 buses << 1e-6 MW
    lhs = out["p_substation_mw"] + sgen
    rhs = load + storage + out["p_loss_mw"]
    assert lhs == pytest.approx(rhs, abs=1e-6)


# --- non-convergence, faults -----------------------------------------------------------------


def test_non_convergence_recorded_and_recovered(model, new_model):
    assert model.step(0, STEP_S, GridInputs(load_p_mw=dict(MG1_LOAD)))["converged"] == 1
    # 1000 MW behind bus 2: hand estimate of the loadability limit of the path
    # (branch 1 + PCC, Z = 0.142 + j0.097 ohm, 12.66 kV, pf 0.95) is ~ 225 MW: no solution.
    bad = model.step(STEP_S, STEP_S, GridInputs(load_p_mw={"MG1_load": 1000.0}))
    assert bad["converged"] == 0
    assert all(math.isnan(v) for v in bad["vm_pu"].values())
    assert math.isnan(bad["p_loss_mw"]) and math.isnan(bad["p_substation_mw"])
    assert math.isnan(bad["exchange_p_mw"]["MG1"])
    assert math.isnan(bad["load_served_mw"]) and math.isnan(bad["load_unserved_mw"])

    good = model.step(2 * STEP_S, STEP_S, GridInputs(load_p_mw=dict(MG1_LOAD)))
    fresh = new_model().step(2 * STEP_S, STEP_S, GridInputs(load_p_mw=dict(MG1_LOAD)))
    assert good["converged"] == 1
    assert not any(math.isnan(v) for v in good["vm_pu"].values())
    # same inputs, same flat start: identical up to NR round-off (1e-9)
    for bus, vm in fresh["vm_pu"].items():
        assert good["vm_pu"][bus] == pytest.approx(vm, abs=1e-9)
    assert good["p_loss_mw"] == pytest.approx(fresh["p_loss_mw"], abs=1e-9)


def test_branch_fault_deenergises_downstream(model, new_model, base_net):
    dso = base_net.load[base_net.load.name.str.startswith("load_b")]
    loads = {name: 0.8 * p for name, p in zip(dso.name, dso.p_nom_mw, strict=True)}
    inp = GridInputs(
        load_p_mw=loads,
        available_p_mw={"PV_b18": 0.2},
        faults=[{"name": "f", "kind": "branch", "branch_ieee": 12}],
    )
    out = model.step(0, STEP_S, inp)
    assert out["converged"] == 1
    assert out["active_faults"] == ["f"]
    dark = {str(b) for b in range(13, 19)}
    for bus, vm in out["vm_pu"].items():
        assert math.isnan(vm) == (bus in dark), bus
    # hand sum of case33bw loads at buses 13..18: 60 + 120 + 60 + 60 + 60 + 90 = 450 kW, x 0.8
    assert out["load_unserved_mw"] == pytest.approx(0.8 * 0.45, abs=1e-9)
    assert out["load_served_mw"] == pytest.approx(out["load_demand_mw"] - 0.36, abs=1e-9)
    assert out["unit_p_mw"]["PV_b18"] == 0.0  # a unit on a dark bus delivers nothing

    restored = model.step(
        STEP_S, STEP_S, GridInputs(load_p_mw=loads, available_p_mw={"PV_b18": 0.2}, faults=[])
    )
    assert restored["converged"] == 1 and restored["active_faults"] == []
    assert not any(math.isnan(v) for v in restored["vm_pu"].values())
    assert restored["load_unserved_mw"] == pytest.approx(0.0, abs=1e-12)
    assert restored["unit_p_mw"]["PV_b18"] == 0.2
    fresh = new_model().step(
        STEP_S, STEP_S, GridInputs(load_p_mw=loads, available_p_mw={"PV_b18": 0.2})
    )
    for bus in IEEE_BUSES:  # full service: the unfaulted solution (NR round-off 1e-9)
        assert restored["vm_pu"][bus] == pytest.approx(fresh["vm_pu"][bus], abs=1e-9)


def test_pv_reactive_power_as_commanded_within_its_power_factor(new_model, data):
    """PV_b18 at 0.2 MW, pf_min 0.95 (pv.csv): |q| <= 0.2 tan(acos 0.95) = 0.065736 Mvar."""
    assert data.pv[0].name == "PV_b18" and data.pv[0].pf_min == 0.95
    limit = 0.2 * math.tan(math.acos(0.95))
    runs = {}
    for label, q_cmd in [("none", None), ("inside", 0.05), ("above", 0.2), ("below", -0.2)]:
        model = new_model()
        inp = GridInputs(
            available_p_mw={"PV_b18": 0.2},
            setpoints_mvar={} if q_cmd is None else {"PV_b18": q_cmd},
        )
        runs[label] = (model.step(0, STEP_S, inp), model)
    applied = {
        k: float(m.net.sgen.q_mvar[m.elements["sgen"]["PV_b18"]]) for k, (_, m) in runs.items()
    }
    assert applied["none"] == 0.0  # without a command: unity power factor
    assert applied["inside"] == pytest.approx(0.05, abs=1e-12)
    assert applied["above"] == pytest.approx(limit, abs=1e-9)
    assert applied["below"] == pytest.approx(-limit, abs=1e-9)
    vm = {k: out["vm_pu"]["18"] for k, (out, _) in runs.items()}
    assert vm["below"] < vm["none"] < vm["inside"] < vm["above"]  # AC: Q lifts the feeder end
    q_sub = {k: out["q_substation_mvar"] for k, (out, _) in runs.items()}
    # the substation supplies less by about the PV's Q (plus the change in reactive losses)
    assert q_sub["none"] - q_sub["above"] == pytest.approx(limit, rel=0.1)


def test_main_grid_loss_blackout(model):
    inp = GridInputs(
        load_p_mw=dict(MG1_LOAD),
        available_p_mw={"MG1_wind": 0.5},
        setpoints_mw={"MG1_ess": 0.2, "MG1_mt": 0.3},
        faults=[{"name": "grid", "kind": "main_grid"}],
    )
    out = model.step(0, STEP_S, inp)
    assert out["converged"] == 1  # a dark network is a valid (trivial) state
    assert all(math.isnan(v) for v in out["vm_pu"].values())
    assert out["load_served_mw"] == 0.0
    assert out["load_unserved_mw"] == out["load_demand_mw"]
    # demand: case33bw total 3.715 MW + MG loads (0.5 + 0.6 + 0.4, peak values)
    assert out["load_demand_mw"] == pytest.approx(3.715 + 1.5, abs=1e-9)
    assert out["unit_p_mw"]["MG1_ess"] == 0.0 and out["unit_p_mw"]["MG1_mt"] == 0.0
    assert out["unit_p_mw"]["MG1_wind"] == 0.0
    assert out["soc_end_mwh"]["MG1_ess"] == out["soc_mwh"]["MG1_ess"] == 0.5
    assert out["p_substation_mw"] == 0.0 and out["p_loss_mw"] == 0.0

    inp.faults = None  # fault still active (unchanged)
    still = model.step(STEP_S, STEP_S, inp)
    assert still["soc_mwh"]["MG1_ess"] == 0.5
    assert still["load_served_mw"] == 0.0

    inp.faults = []
    back = model.step(2 * STEP_S, STEP_S, inp)
    assert back["converged"] == 1 and back["load_unserved_mw"] == pytest.approx(0, abs=1e-12)
    assert back["soc_mwh"]["MG1_ess"] == 0.5
    assert back["unit_p_mw"]["MG1_ess"] == 0.2  # live again: the request is applied


def test_microgrid_load_keeps_power_factor_after_zero_demand(model, new_model, data):
    """A microgrid load at 0 MW for one step must come back at its power factor (0.95)."""
    model.step(0, STEP_S, GridInputs(load_p_mw={"MG1_load": 0.0}))
    out = model.step(STEP_S, STEP_S, GridInputs(load_p_mw=dict(MG1_LOAD)))
    fresh = new_model().step(STEP_S, STEP_S, GridInputs(load_p_mw=dict(MG1_LOAD)))
    idx = int(model.net.load.index[model.net.load.name == "MG1_load"][0])
    q_expected = q_of(0.5, data.microgrid("MG1").load_pf)  # 0.5 * tan(acos 0.95) = 0.1643
    assert model.net.load.at[idx, "q_mvar"] == pytest.approx(q_expected, abs=1e-12)
    # same inputs as a fresh model: same reactive import (NR round-off 1e-9)
    assert out["q_substation_mvar"] == pytest.approx(fresh["q_substation_mvar"], abs=1e-9)


# --- rule-based controller -----------------------------------------------------------------


def forecasts(data, n, **mg_values):
    """Forecasts for ``n`` steps of 0.25 h; ``MG1=(load, wind)`` etc., others load = wind."""
    p = {}
    for mg in data.microgrids:
        load, wind = mg_values.get(mg.name, (0.3, 0.3))
        p[f"{mg.name}_load"] = np.broadcast_to(np.asarray(load, float), (n,)).copy()
        p[f"{mg.name}_wind"] = np.broadcast_to(np.asarray(wind, float), (n,)).copy()
    return Forecasts(time_s=0, step_h=DT_H, p_mw=p)


def planned_soc(mg, soc0, ess):
    socs = [soc0]
    for p in ess:
        socs.append(socs[-1] + soc_change_mwh(p, mg.ess_eta_ch, mg.ess_eta_dis, DT_H))
    return np.array(socs)


def test_rule_based_surplus_charges_storage(data):
    ctrl = RuleBasedController(data, plan_steps=4)
    fc = forecasts(data, 4, MG1=(0.5, 0.8), MG2=(0.6, 0.7), MG3=(0.4, 1.0))
    plan = ctrl.plan(Measurements(time_s=0, soc_mwh={"MG3_ess": 0.78}), fc)
    assert plan.n_steps == 4
    # MG1: surplus 0.3 > p_ch_max 0.25; MG2: surplus 0.1 < limits
    assert plan.setpoints_mw["MG1_ess"] == pytest.approx([0.25] * 4, abs=1e-12)
    assert plan.setpoints_mw["MG2_ess"] == pytest.approx([0.1] * 4, abs=1e-12)
    # MG3 nearly full: headroom 0.02 MWh -> 0.02 / (0.95 * 0.25) MW once, then nothing
    assert plan.setpoints_mw["MG3_ess"] == pytest.approx([0.02 / (0.95 * DT_H), 0, 0, 0], abs=1e-12)
    for mg in data.microgrids:
        assert (plan.setpoints_mw[f"{mg.name}_mt"] == 0).all()
        assert (plan.setpoints_mw[f"{mg.name}_wind"] == mg.wind_p_rated_mw).all()  # no curtailment


def test_rule_based_turbine_ramps_down(data):
    ctrl = RuleBasedController(data, plan_steps=4)
    meas = Measurements(time_s=0, soc_mwh={}, mt_p_mw={"MG1_mt": 0.3})
    plan = ctrl.plan(meas, forecasts(data, 4, MG1=(0.5, 0.8)))
    # surplus: target 0, ramp 0.2 MW/h * 0.25 h = 0.05 MW per step down from 0.3
    assert plan.setpoints_mw["MG1_mt"] == pytest.approx([0.25, 0.2, 0.15, 0.1], abs=1e-12)


def test_rule_based_deficit_storage_first_then_ramped_turbine(data):
    ctrl = RuleBasedController(data, plan_steps=8)
    plan = ctrl.plan(Measurements(time_s=0, soc_mwh={}), forecasts(data, 8, MG1=(0.5, 0.1)))
    ess, mt = plan.setpoints_mw["MG1_ess"], plan.setpoints_mw["MG1_mt"]
    # hand: deficit 0.4; storage at p_dis_max 0.25 for 6 steps (0.0625/0.95 MWh each) from 0.5
    # leaves 0.5 - 0.1 - 6 * 0.0625 / 0.95 = 0.0052632 MWh -> 0.0052632 * 0.95 / 0.25 = 0.02 MW
    assert ess == pytest.approx([-0.25] * 6 + [-0.02, 0.0], abs=1e-9)
    # turbine (documented start-up rule): starts at most at min + ramp = 0.05 + 0.05 = 0.1,
    # reaches the residual 0.15, then follows residuals 0.38 and 0.4 at 0.05 MW per step
    assert mt == pytest.approx([0.1, 0.15, 0.15, 0.15, 0.15, 0.15, 0.2, 0.25], abs=1e-9)


def test_rule_based_limits_over_a_day(data):
    n = 96
    rng = np.random.default_rng(7)
    values = {
        mg.name: (
            rng.uniform(0.0, 1.2 * mg.load_p_peak_mw, n),
            rng.uniform(0.0, mg.wind_p_rated_mw, n),
        )
        for mg in data.microgrids
    }
    socs = {"MG1_ess": 0.12, "MG2_ess": 1.15, "MG3_ess": 0.4}
    meas = Measurements(time_s=0, soc_mwh=socs, mt_p_mw={"MG2_mt": 0.5})
    plan = RuleBasedController(data, plan_steps=n).plan(meas, forecasts(data, n, **values))
    for mg in data.microgrids:
        ess = plan.setpoints_mw[f"{mg.name}_ess"]
        mt = plan.setpoints_mw[f"{mg.name}_mt"]
        soc = planned_soc(mg, socs[f"{mg.name}_ess"], ess)
        # 1e-12: floating rounding of the headroom division (feasible_power_mw)
        assert soc.min() >= mg.ess_e_min_mwh - 1e-12 and soc.max() <= mg.ess_e_max_mwh + 1e-12
        assert ess.max() <= mg.ess_p_ch_max_mw and ess.min() >= -mg.ess_p_dis_max_mw
        assert mt.min() >= 0 and mt.max() <= mg.mt_p_max_mw
        prev = np.concatenate([[meas.mt_p_mw.get(f"{mg.name}_mt", 0.0)], mt[:-1]])
        ramp = mg.mt_ramp_mw_per_h * DT_H
        running = (prev > 0) & (mt > 0)
        assert np.abs(mt - prev)[running].max(initial=0) <= ramp + 1e-12
        starts, stops = (prev == 0) & (mt > 0), (prev > 0) & (mt == 0)
        assert (mt[starts] <= mg.mt_p_min_mw + ramp + 1e-12).all()  # start-up rule
        assert (prev[stops] <= mg.mt_p_min_mw + ramp + 1e-12).all()  # shut-down rule


def test_rule_based_turbine_never_between_zero_and_minimum(data):
    """A running turbine stays within [mt_p_min_mw, mt_p_max_mw]; off is exactly 0."""
    ctrl = RuleBasedController(data, plan_steps=8)
    plan = ctrl.plan(
        Measurements(time_s=0, soc_mwh={}), forecasts(data, 8, MG3=(0.4, 0.0))
    )  # MG3 deficit from a cold turbine
    mg3 = data.microgrid("MG3")
    mt = plan.setpoints_mw["MG3_mt"]
    below_min = [float(p) for p in mt if 0 < p < mg3.mt_p_min_mw]
    assert below_min == [], f"MG3_mt set-points below mt_p_min_mw {mg3.mt_p_min_mw}: {mt}"


# --- accounting -----------------------------------------------------------------------------


def test_step_costs_by_hand(data):
    assert price_at(data.tariff, 8.5, "buy_price_cny_per_mwh") == 1100  # tariff.csv hour 8
    assert price_at(data.tariff, 8.5, "sell_price_cny_per_mwh") == 300
    assert price_at(data.tariff, 24.25, "buy_price_cny_per_mwh") == 380  # wraps to hour 0
    units = {"MG1_mt": 0.3, "MG1_ess": -0.2, "MG2_mt": 0.1, "MG2_ess": 0.1, "MG3_ess": 0.0}
    exchange = {"MG1": 0.4, "MG2": -0.2, "MG3": 0.0}
    costs = step_costs(units, exchange, p_loss_mw=0.1, hour_of_day=8.5, dt_h=DT_H, data=data)
    # hand: fuel 0.3*0.25*620 + 0.1*0.25*650 = 46.5 + 16.25
    assert costs["cost_mt_cny"] == pytest.approx(62.75, abs=1e-9)
    # degradation |P| * dt * 40: (0.2 + 0.1) * 0.25 * 40
    assert costs["cost_ess_cny"] == pytest.approx(3.0, abs=1e-9)
    # trade: import 0.4 * 1100 * 0.25 = 110, export 0.2 * 300 * 0.25 = 15 (earned)
    assert costs["cost_grid_cny"] == pytest.approx(95.0, abs=1e-9)
    # losses 0.1 * 0.25 * 500 (dso.csv loss_cost)
    assert costs["cost_loss_cny"] == pytest.approx(12.5, abs=1e-9)
    assert costs["cost_total_cny"] == pytest.approx(173.25, abs=1e-9)
    nan = step_costs(units, {"MG1": math.nan}, math.nan, 8.5, DT_H, data)
    assert math.isnan(nan["cost_grid_cny"]) and math.isnan(nan["cost_total_cny"])


# --- islanded operation (grid-forming microgrids) ------------------------------------
ISLAND_BUSES = range(26, 34)  # cut off by a fault on IEEE branch 25 (6-26); MG3 sits at 27


def nominal_loads(net):
    return {name: float(p) for name, p in zip(net.load.name, net.load.p_nom_mw, strict=True)}


def test_island_beyond_its_microgrid_collapses_and_its_load_is_unserved(new_model, data):
    model = new_model()
    loads = nominal_loads(model.net)
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=loads,
            available_p_mw={"MG3_wind": 0.2},
            faults=[{"name": "f", "kind": "branch", "branch_ieee": 25}],
        ),
    )
    assert out["islands"] == [] and out["islands_collapsed"] == ["MG3"]
    island_demand = sum(loads[f"load_b{b}"] for b in ISLAND_BUSES) + loads["MG3_load"]
    # 0.92 MW of IEEE loads + 0.4 MW of MG3's own load exceed MG3's 0.3 + 0.2 + 0.2 MW
    assert out["load_unserved_mw"] == pytest.approx(island_demand, abs=1e-9)
    assert all(np.isnan(out["vm_pu"][str(b)]) for b in ISLAND_BUSES)


def test_island_the_controller_formed_sheds_load_by_tier_instead_of_collapsing(new_model, data):
    """The island of the test above, but formed on command (grid former MG3): 1.32 MW of
    demand against MG3's 0.3 + 0.2 + 0.2 MW (turbine, storage, wind). Under-frequency load
    shedding drops whole loads, tier 3 first (load_tiers.csv: 28 is tier 1; 30, 32 and
    MG3's own load tier 2; the rest tier 3), largest first, until the island holds."""
    model = new_model()
    loads = nominal_loads(model.net)
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=loads,
            available_p_mw={"MG3_wind": 0.2},
            faults=[{"name": "f", "kind": "branch", "branch_ieee": 25}],
            grid_formers=["MG3"],
        ),
    )
    assert out["islands"] == ["MG3"] and out["islands_collapsed"] == []
    island = [f"load_b{b}" for b in ISLAND_BUSES] + ["MG3_load"]
    served = {n: out["load_served_p_mw"][n] for n in island}
    tier = {n: data.tier_of(int(n[6:])) if n.startswith("load_b") else 2 for n in island}
    shed = [n for n in island if served[n] == 0.0]
    kept = [n for n in island if served[n] > 0.0]
    assert served["load_b28"] == loads["load_b28"]  # the tier-1 load stays
    assert shed and min(tier[n] for n in shed) >= max(tier[n] for n in kept)
    generation_mw = 0.2 + out["unit_p_mw"]["MG3_mt"] - out["unit_p_mw"]["MG3_ess"]
    assert sum(served.values()) <= generation_mw <= 0.7 + 1e-9
    assert generation_mw - sum(served.values()) < 0.01  # the island's losses
    # tier 3 (0.45 MW) and then the smallest tier-2 load that covers the rest: bus 30's 0.2 MW
    assert sorted(shed) == sorted([f"load_b{b}" for b in (26, 27, 29, 30, 31, 33)])


def test_island_within_capacity_runs_on_the_microgrid(new_model, data):
    model = new_model()
    loads = nominal_loads(model.net)
    keep = {"load_b26", "load_b27", "load_b28"}
    shed = {f"load_b{b}": 0.0 for b in ISLAND_BUSES if f"load_b{b}" not in keep}
    fault = [{"name": "f", "kind": "branch", "branch_ieee": 25}]
    soc0 = data.microgrid("MG3").ess_e_init_mwh
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=loads, available_p_mw={"MG3_wind": 0.2}, faults=fault, served_fraction=shed
        ),
    )
    assert out["islands"] == ["MG3"]
    for b in (26, 27, 28):
        assert 0.95 < out["vm_pu"][str(b)] < 1.05  # energised by the grid former (1.0 pu)
    units = out["unit_p_mw"]
    # island balance by hand: 0.18 MW of loads + 0.4 MW MG3 load = wind 0.2 + turbine at its
    # 0.3 MW maximum + storage discharge; losses in the short island are below 1 kW
    assert units["MG3_mt"] == pytest.approx(0.3)
    assert -units["MG3_ess"] == pytest.approx(0.58 - 0.5, abs=2e-3)
    served_island = sum(loads[k] for k in keep)
    assert out["load_unserved_mw"] == pytest.approx(sum(loads[k] for k in shed), abs=1e-9)
    assert out["load_served_mw"] >= served_island
    nxt = model.step(STEP_S, STEP_S, GridInputs(load_p_mw=loads, available_p_mw={"MG3_wind": 0.2}))
    # the storage delivered what the island needed: SOC by the discharge efficiency
    expected = soc0 + units["MG3_ess"] * 0.25 / data.microgrid("MG3").ess_eta_dis
    assert nxt["soc_mwh"]["MG3_ess"] == pytest.approx(expected, abs=1e-9)


def test_island_beyond_its_grid_former_is_balanced_by_its_other_microgrids(new_model, data):
    """Main grid lost, MG3 the grid former of one island with MG1 and MG2, which run their
    turbines at their maxima (0.4, 0.5 MW) for their own 0.5, 0.6 MW loads: MG3 (0.3 MW
    turbine + 0.2 MW storage, microgrids.csv) cannot carry its 0.4 MW load, buses 26-28
    (0.18 MW) and the other two's 0.2 MW import. Their storage makes up the rest (secondary
    control within the step), so the island stands (it collapsed before)."""
    model = new_model()
    loads = nominal_loads(model.net)
    keep = {"load_b26", "load_b27", "load_b28"}
    served = {name: float(name in keep) for name in loads if name.startswith("load_b")}
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=loads,
            setpoints_mw={"MG1_mt": 0.4, "MG2_mt": 0.5},
            faults=[{"name": "m", "kind": "main_grid"}],
            served_fraction=served,
            grid_formers=["MG3"],
        ),
    )
    assert out["islands"] == ["MG3"] and out["islands_collapsed"] == []
    u = out["unit_p_mw"]
    assert (u["MG1_mt"], u["MG2_mt"], u["MG3_mt"]) == pytest.approx((0.4, 0.5, 0.3))
    # the grid former at its limits (less the loss change of the second power flow)
    assert -u["MG3_ess"] == pytest.approx(0.2, abs=1e-3)
    support_mw = -(u["MG1_ess"] + u["MG2_ess"])
    demand_mw = sum(loads[k] for k in keep) + 0.5 + 0.6 + 0.4
    # island balance: turbines 1.2 MW + storage discharge = loads + losses (no wind or PV)
    generation_mw = 1.2 - u["MG3_ess"] + support_mw
    assert generation_mw == pytest.approx(demand_mw + out["p_loss_mw"], abs=1e-6)
    assert 0.0 < -u["MG1_ess"] <= 0.25 and -u["MG2_ess"] <= 0.3  # in name order, in limits
    assert out["load_served_mw"] == pytest.approx(demand_mw, abs=1e-9)


def test_main_grid_loss_with_everything_closed_is_one_island_too_big(new_model):
    model = new_model()
    loads = nominal_loads(model.net)
    out = model.step(
        0, STEP_S, GridInputs(load_p_mw=loads, faults=[{"name": "m", "kind": "main_grid"}])
    )
    assert out["islands"] == []
    assert len(out["islands_collapsed"]) == 1  # one grid former tried, then collapsed
    assert out["load_served_mw"] == pytest.approx(0.0)
    assert out["p_substation_mw"] == pytest.approx(0.0)
