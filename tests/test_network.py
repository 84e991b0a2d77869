"""IEEE 33-bus network: literature base case, switches, numbering and parameter validation."""

from __future__ import annotations

import copy
import dataclasses

import pandapower as pp
import pytest

from mgcosim.networks.ieee33 import N_BRANCH_IEEE, N_BUS_IEEE
from mgcosim.networks.params import ParameterError, with_overrides
from mgcosim.networks.topology import (
    UnknownElementError,
    branch_of_bus_pair,
    bus_ieee,
    bus_index,
    energised_buses,
    is_radial,
    line_index,
    switch_of_branch,
)

TIES = {33, 34, 35, 36, 37}


@pytest.fixture
def net(base_net):
    return copy.deepcopy(base_net)


def ieee_lines(net):
    return net.line.index[net.line["ieee"].between(1, N_BRANCH_IEEE)]


# --- base case (Baran & Wu 1989; pandapower case33bw) ---------------------------------------


def test_base_case_matches_baran_wu(net):
    net.load.loc[net.load["name"].str.startswith("MG"), "in_service"] = False
    assert (net.sgen.p_mw == 0).all() and (net.storage.p_mw == 0).all()
    pp.runpp(net, numba=False)
    assert net.converged
    losses_kw = 1000 * net.res_line.pl_mw.loc[ieee_lines(net)].sum()
    # Baran & Wu (1989), Table/text: 202.68 kW total real losses; 0.05 kW is the rounding
    # of the published figure (two decimals) plus NR tolerance.
    assert losses_kw == pytest.approx(202.68, abs=0.05)
    # PCC lines carry nothing when the microgrids are empty (consistency: no charging, c = 0).
    assert 1000 * net.res_line.pl_mw.sum() == pytest.approx(losses_kw, abs=1e-9)
    vm = net.res_bus.vm_pu.loc[[bus_index(net, b) for b in range(1, N_BUS_IEEE + 1)]]
    # Published minimum voltage 0.9131 pu (four decimals) at bus 18: tolerance 1e-4.
    assert vm.min() == pytest.approx(0.9131, abs=1e-4)
    assert bus_ieee(net, int(vm.idxmin())) == 18
    assert net.res_bus.vm_pu.at[bus_index(net, 18)] == pytest.approx(0.9131, abs=1e-4)


# --- switches, topology, microgrid elements -------------------------------------------------


def test_one_switch_per_ieee_branch_ties_open(net):
    line_sw = net.switch[net.switch.et == "l"]
    ieee_sw = line_sw[net.line.loc[line_sw.element, "ieee"].to_numpy() > 0]
    assert len(ieee_sw) == N_BRANCH_IEEE
    branches = sorted(int(net.line.at[int(e), "ieee"]) for e in ieee_sw.element)
    assert branches == list(range(1, N_BRANCH_IEEE + 1))
    for branch in range(1, N_BRANCH_IEEE + 1):
        sw = switch_of_branch(net, branch)
        assert int(net.switch.at[sw, "element"]) == line_index(net, branch)
        assert net.switch.at[sw, "name"] == f"sw_{branch}"
        assert bool(net.switch.at[sw, "closed"]) is (branch not in TIES)
    # lines themselves stay in service: the open/closed state is carried by the switches
    assert net.line.in_service.all()


def test_default_topology_radial_and_energised(net):
    assert is_radial(net)
    live = energised_buses(net)
    assert {bus_index(net, b) for b in range(1, N_BUS_IEEE + 1)} <= live
    assert set(net.bus.index) == live  # microgrid buses too
    net.switch.at[switch_of_branch(net, 33), "closed"] = True  # tie 21-8 closes a loop
    assert not is_radial(net)


def test_microgrid_buses_and_elements(net, data):
    for mg in data.microgrids:
        bus = int(net.bus.index[net.bus.name == mg.name][0])
        assert bus_ieee(net, bus) == 0
        pcc = net.line[net.line.name == f"{mg.name}_pcc"]
        assert len(pcc) == 1
        assert int(pcc.from_bus.iloc[0]) == bus_index(net, mg.bus_ieee)
        assert int(pcc.to_bus.iloc[0]) == bus
        for table, suffix in (
            ("sgen", "mt"),
            ("sgen", "wind"),
            ("storage", "ess"),
            ("load", "load"),
        ):
            rows = net[table][net[table].name == f"{mg.name}_{suffix}"]
            assert len(rows) == 1, f"{mg.name}_{suffix}"
            assert int(rows.bus.iloc[0]) == bus
        ess = net.storage[net.storage.name == f"{mg.name}_ess"].iloc[0]
        assert ess.max_e_mwh == mg.ess_e_max_mwh
        load = net.load[net.load.name == f"{mg.name}_load"].iloc[0]
        assert load.p_mw == mg.load_p_peak_mw
    for pv in data.pv:
        row = net.sgen[net.sgen.name == pv.name].iloc[0]
        assert bus_ieee(net, int(row.bus)) == pv.bus_ieee


# --- IEEE numbering -------------------------------------------------------------------------


def test_ieee_numbering_round_trips(net):
    for b in range(1, N_BUS_IEEE + 1):
        assert bus_ieee(net, bus_index(net, b)) == b
    for br in range(1, N_BRANCH_IEEE + 1):
        assert int(net.line.at[line_index(net, br), "ieee"]) == br


@pytest.mark.parametrize(
    "call",
    [
        lambda n: bus_index(n, 34),
        lambda n: bus_index(n, 0),  # microgrid buses carry no IEEE number
        lambda n: line_index(n, 38),
        lambda n: branch_of_bus_pair(n, 12, 14),  # no branch joins them
        lambda n: branch_of_bus_pair(n, 12, 34),
    ],
)
def test_unknown_elements_raise(net, call):
    with pytest.raises(UnknownElementError):
        call(net)


def test_branch_of_bus_pair(net):
    assert branch_of_bus_pair(net, 12, 13) == 12
    assert branch_of_bus_pair(net, 13, 12) == 12
    assert branch_of_bus_pair(net, 8, 21) == 33  # tie branch 33 joins 21 and 8
    assert branch_of_bus_pair(net, 21, 8) == 33


# --- parameter validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"wind_p_rated_mw": -0.1}, "wind_p_rated_mw"),
        ({"ess_p_ch_max_mw": -1.0}, "ess_p_ch_max_mw"),
        ({"ess_e_min_mwh": 0.9, "ess_e_max_mwh": 0.5, "ess_e_init_mwh": 0.6}, "ess_e_min_mwh"),
        ({"ess_e_init_mwh": 1.5}, "ess_e_init_mwh"),
        ({"ess_e_init_mwh": 0.05}, "ess_e_init_mwh"),
        ({"ess_eta_ch": 1.05}, "ess_eta_ch"),
        ({"ess_eta_dis": 0.0}, "ess_eta_dis"),
        ({"mt_p_min_mw": 0.5, "mt_p_max_mw": 0.4}, "mt_p_min_mw"),
    ],
)
def test_microgrid_validation(data, changes, field):
    data.microgrid("MG1").validate()  # the built-in data are valid
    bad = dataclasses.replace(data.microgrid("MG1"), **changes)
    with pytest.raises(ParameterError) as err:
        bad.validate()
    assert err.value.field == field
    assert err.value.fix


def test_pv_and_dso_validation(data):
    for pv in data.pv:
        pv.validate()
    data.dso.validate()
    with pytest.raises(ParameterError, match="p_rated_mw"):
        dataclasses.replace(data.pv[0], p_rated_mw=-0.3).validate()
    with pytest.raises(ParameterError, match="pf_min"):
        dataclasses.replace(data.pv[0], pf_min=1.2).validate()
    with pytest.raises(ParameterError, match="v_min_pu"):
        dataclasses.replace(data.dso, v_min_pu=1.1, v_max_pu=0.9).validate()
    with pytest.raises(ParameterError, match="loss_cost_cny_per_mwh"):
        dataclasses.replace(data.dso, loss_cost_cny_per_mwh=-1.0).validate()


def test_with_overrides_casts_types(data):
    mg = data.microgrid("MG1")
    new = with_overrides(mg, {"ess_e_max_mwh": 2, "bus_ieee": 5.0, "name": "MGx"})
    assert new.ess_e_max_mwh == 2.0 and type(new.ess_e_max_mwh) is float
    assert new.bus_ieee == 5 and type(new.bus_ieee) is int
    assert new.name == "MGx"
    assert mg.ess_e_max_mwh == 1.0  # the original is untouched (frozen copy)
    dso = with_overrides(data.dso, {"switch_budget_per_horizon": 4.0})
    assert dso.switch_budget_per_horizon == 4 and type(dso.switch_budget_per_horizon) is int


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"no_such_parameter": 1.0}, "no_such_parameter"),
        ({"ess_eta_ch": "abc"}, "ess_eta_ch"),
        ({"ess_eta_ch": True}, "ess_eta_ch"),
        ({"ess_eta_ch": [0.9]}, "ess_eta_ch"),
    ],
)
def test_with_overrides_refuses(data, overrides, field):
    with pytest.raises(ParameterError) as err:
        with_overrides(data.microgrid("MG1"), overrides)
    assert err.value.field == field
