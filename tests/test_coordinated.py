"""Coordinated restoration with microgrids (seed 003): three strategies, real HiGHS solves.

The seed's event: main grid lost, branches 12 (12-13) and 22 (3-23) damaged, microgrids at
IEEE buses 2, 11, 27, one 2 h window at 18 h. Tier-1 DSO loads: buses 6, 9, 16, 18, 28.
"""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Mapping
from dataclasses import fields

import networkx as nx
import numpy as np
import pyomo.environ as pyo
import pytest

from mgcosim.controllers.coordinated import (
    DEFAULT_PREFERENCE,
    NO_PREFERENCE,
    compare_strategies,
    format_table,
    main_grid_loss_case,
    solve_lower,
    solve_milp,
    solve_projection,
    uniform_preference,
    virtual_node_value,
)
from mgcosim.controllers.coordinated_model import (
    EXCHANGE_PENALTY,
    SWITCH_PENALTY,
    DSOEvent,
    build_upper_model,
)
from mgcosim.controllers.projection import sample_inside
from mgcosim.controllers.projection_data import TieLineHull, VirtualNodeOffer
from mgcosim.sim.coordinate import DEFAULT_PREFERENCE as CLI_DEFAULT_PREFERENCE
from mgcosim.sim.coordinate import _preference, add_parser

TIER1 = (6, 9, 16, 18, 28)
EQUAL_TOL = 1e-6  # weighted MW (objective ~84): projection at preferences 1 vs central


@pytest.fixture(scope="module")
def case():
    return main_grid_loss_case()


@pytest.fixture(scope="module")
def strategies(case):
    """The three strategies at preferences 1, and the projection at the default ones."""
    results, projections = compare_strategies(case, uniform_preference(case, NO_PREFERENCE))
    preferred = solve_projection(
        case, uniform_preference(case, DEFAULT_PREFERENCE), projections=projections
    )
    return results, projections, preferred


def test_main_grid_loss_case(case):
    ev = case.event
    assert ev.faulted == {12, 22} and not ev.main_grid_available
    assert {net.bus_ieee for net in case.microgrids.values()} == {2, 11, 27}
    assert ev.tier1_buses == TIER1
    assert ev.tier_weight == {1: 100.0, 2: 10.0, 3: 0.2}


def test_projection_equals_central_dispatch_when_preferences_are_1(strategies):
    results, _, _ = strategies
    central, projection = results["central"], results["projection"]
    assert projection.weighted_mw == pytest.approx(central.weighted_mw, abs=EQUAL_TOL)
    assert projection.objective == pytest.approx(central.objective, abs=EQUAL_TOL)
    # the lower levels deliver what the virtual nodes promised
    weights = {1: 100.0, 2: 10.0, 3: 0.2}
    realised = projection.mg_weighted_mw(weights)
    for g, promised in projection.mg_promised_weighted_mw.items():
        assert realised[g] == pytest.approx(promised, abs=EQUAL_TOL)


def test_virtual_node_reproduces_the_microgrid_value(case, strategies):
    """At sampled tie-line points the virtual node (polygon + ranges) values a microgrid as
    its full model does (preferences 1): the condition for (c) = (b)."""
    _, projections, _ = strategies
    rng = np.random.default_rng(7)
    w = case.event.tier_weight
    for g, proj in projections.items():
        points = [*proj.offer.hull.vertices, *sample_inside(proj.offer.hull, 8, rng)]
        for p, q in points:
            full, _ = solve_lower(case.microgrids[g], case.conditions[g], p, q)
            value = sum(w[t] * full[t] for t in full)
            assert virtual_node_value(proj.offer, w, p, q) == pytest.approx(value, abs=1e-6)


def test_projection_restores_at_least_the_tier1_load_of_no_sharing(strategies):
    results, _, preferred = strategies
    none = results["no_sharing"]
    for proj in (results["projection"], preferred):
        assert proj.restored_mw_by_tier()[1] >= none.restored_mw_by_tier()[1] - 1e-9
        assert proj.dso_restored_mw[1] >= none.dso_restored_mw[1] - 1e-9
        # the seed: every tier-1 DSO load restored. Every optimum does: forbidding it (at
        # most 4 of the 5 picked up) lowers the objective by 5.5 weighted MW (of 84.2)
        assert proj.tier1_served == TIER1
    assert none.tier1_served != TIER1  # without the microgrids the DSO cannot (infeasible)


def test_ordering_of_the_strategies(strategies):
    results, _, preferred = strategies
    assert results["no_sharing"].weighted_mw < preferred.weighted_mw
    # (c)'s realised plan is feasible for (b): not above it beyond the tie-breaking penalties
    exchanged = sum(map(abs, preferred.tie_p_mw.values())) + sum(
        map(abs, preferred.tie_q_mvar.values())
    )
    penalties = SWITCH_PENALTY * preferred.switch_actions + EXCHANGE_PENALTY * exchanged
    assert preferred.weighted_mw <= results["central"].weighted_mw + penalties + EQUAL_TOL
    for r in results.values():
        assert all(v >= -1e-9 for v in r.restored_mw_by_tier().values())
        for g, tiers in r.mg_restored_mw.items():
            assert all(tiers[t] <= r.mg_demand_mw[g][t] + 1e-9 for t in tiers)
    assert all(p == 0.0 for p in results["no_sharing"].tie_p_mw.values())


def test_preferences_keep_microgrid_load_at_home(strategies):
    """theta > 1 (seed): a microgrid serves its own tier-2 load before DSO tier-2 loads."""
    results, _, preferred = strategies
    own = lambda r: sum(t[2] for t in r.mg_restored_mw.values())  # noqa: E731
    assert own(preferred) >= own(results["projection"]) - 1e-9
    assert own(preferred) == pytest.approx(sum(d[2] for d in preferred.mg_demand_mw.values()))


def test_plans_are_radial_with_one_source_per_island(case, strategies):
    results, _, preferred = strategies
    br = {b.ieee: b for b in case.event.dso.branches}
    where = {g.name: g.bus_ieee for g in case.event.generators}
    where |= {g: n.bus_ieee for g, n in case.microgrids.items()}
    for r in (*results.values(), preferred):
        assert not set(r.live_branches) & case.event.faulted
        graph = nx.Graph()
        graph.add_nodes_from(r.energised_buses)
        graph.add_edges_from((br[ln].from_bus, br[ln].to_bus) for ln in r.live_branches)
        assert nx.is_forest(graph)
        sources = {where[s] for s in r.island_sources}
        for island in nx.connected_components(graph):
            assert len(island & sources) == 1, (r.strategy, sorted(island))


def test_dso_model_is_built_from_offers_only(case, strategies):
    """Only polygons, virtual-node ranges and preferences cross: hand-written offers suffice,
    and the model has the same components and size with the real projections' offers."""
    _, projections, _ = strategies
    sig = inspect.signature(build_upper_model)
    assert list(sig.parameters) == ["event", "offers"]
    assert {f.name for f in fields(DSOEvent)}.isdisjoint({"microgrids", "conditions"})
    assert {f.name for f in fields(VirtualNodeOffer)} == {
        "name",
        "bus_ieee",
        "hull",
        "source_p_mw",
        "source_q_mvar",
        "tier_max_mw",
        "load_q_per_p",
        "grid_forming",
        "pcc_v_band_pu",
        "preference",
    }
    square = TieLineHull.from_vertices(
        [(-0.5, -0.2), (0.3, -0.2), (0.3, 0.3), (-0.5, 0.3)], threshold_mw=1e-3
    )
    offers = {
        g: VirtualNodeOffer(
            name=g,
            bus_ieee=bus,
            hull=square,
            source_p_mw=(0.0, 0.8),
            source_q_mvar=(-0.2, 0.2),
            tier_max_mw={1: 0.1, 2: 0.1, 3: 0.1},
            load_q_per_p=0.33,
            grid_forming=True,
            pcc_v_band_pu=(0.95, 1.05),
            preference=dict(NO_PREFERENCE),
        )
        for g, bus in (("MG1", 2), ("MG2", 11), ("MG3", 27))
    }
    hand = build_upper_model(case.event, offers)
    real = build_upper_model(case.event, {g: p.offer for g, p in projections.items()})
    internal = {"mg", "N", "E", "U", "LD", "gen_p", "gen_q", "z", "u", "load_p"}
    ev = case.event
    dso_labels = {None, *ev.dso.buses, *(b.ieee for b in ev.dso.branches), *offers, *ev.pv_mw}
    dso_labels |= {g.name for g in ev.generators} | {1, 2, 3}  # tiers
    for m in (hand, real):
        names = {c.local_name for c in m.component_objects(descend_into=True)}
        assert not names & internal
        assert not list(m.component_objects(pyo.Block, descend_into=True))
        labels = {x for v in m.component_objects(pyo.Var) for i in v for x in _flat(i)}
        assert labels <= dso_labels, labels - dso_labels
    n_facets = sum(len(p.offer.hull.offsets) for p in projections.values())
    assert hand.nvariables() == real.nvariables()
    assert real.nconstraints() - hand.nconstraints() == n_facets - 3 * 4
    solve_milp(hand, "upper level on hand-written offers")
    assert pyo.value(hand.dso_value) > 0


def _flat(index) -> tuple:
    return index if isinstance(index, tuple) else (index,)


def test_format_table(strategies):
    results, _, preferred = strategies
    text = format_table({**results, "projection_pref": preferred})
    for name in ("no_sharing", "central", "projection", "demand", "MG3"):
        assert name in text
    assert "[6, 9, 16, 18, 28] (not: none)" in text


def test_coordinate_command(tmp_path, capsys):
    assert _preference(CLI_DEFAULT_PREFERENCE) == DEFAULT_PREFERENCE
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "coordinate.json"
    args = parser.parse_args(
        ["coordinate", "--samples", "20", "--repeats", "1", "--json", str(out)]
    )
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "projection_pref1" in text and "vertices feasible" in text
    report = json.loads(out.read_text())
    assert report["projection_pref1_equals_central"]
    assert report["tier1_projection_ge_no_sharing"]
    for a in report["accuracy"].values():
        assert a["vertices_feasible"] == a["n_vertices"]
        assert a["inside_feasible"] == a["n_inside"] == 20
        assert a["outside_infeasible"] == a["n_outside"]
    with pytest.raises(SystemExit):
        parser.parse_args(["coordinate", "--preference", "0.5,1,1"])


def test_offers_accept_mappings_of_preferences(case, strategies):
    _, projections, _ = strategies
    offer = projections["MG1"].offer
    assert isinstance(offer.tier_max_mw, Mapping)
    assert offer.with_preference({1: 2.0, 2: 1.0, 3: 1.0}).preference[1] == 2.0


def test_unknown_faulted_branch_is_refused(data):
    """IEEE 33 has branches 1..37: branch 40 is named in the refusal."""
    with pytest.raises(ValueError, match=r"^faulted: unknown IEEE branches \[40\]$"):
        main_grid_loss_case(data, faulted=(12, 40))
