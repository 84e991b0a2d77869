"""Tie-line projection of the microgrids' restoration sets (seed 003), real HiGHS solves.

Microgrids MG1/MG2/MG3 with their internal networks (``networks/data/mg_internal_*.csv``)
at the seed 003 hour (18 h: load 1.0 pu, wind 0.52 pu) over a 2 h window.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mgcosim.controllers.projection import (
    check_accuracy,
    is_feasible_point,
    points_beyond_facets,
    project_microgrid,
    sample_inside,
)
from mgcosim.controllers.projection_data import (
    PreferenceError,
    unit_p_max_mw,
    window_conditions,
)
from mgcosim.controllers.projection_model import N_SIDES, build_microgrid_model
from mgcosim.networks.microgrid_internal import (
    BUSES_FILE,
    COLUMNS,
    LINES_FILE,
    UNITS_FILE,
    MicrogridDataError,
    internal_networks_from_tables,
    load_microgrid_networks,
)
from mgcosim.networks.params import DATA_DIR

THRESHOLD_MW = 1e-3
MARGIN_MW = 1e-3  # outside points lie threshold + margin beyond a facet
NO_PREFERENCE = {1: 1.0, 2: 1.0, 3: 1.0}


@pytest.fixture(scope="module")
def nets(data):
    return load_microgrid_networks(data)


@pytest.fixture(scope="module")
def conditions(nets):
    return {
        g: window_conditions(net, window_h=2.0, load_pu=1.0, wind_pu=0.52)
        for g, net in nets.items()
    }


@pytest.fixture(scope="module")
def projections(nets, conditions):
    return {
        g: project_microgrid(net, conditions[g], NO_PREFERENCE, THRESHOLD_MW)
        for g, net in nets.items()
    }


def test_internal_networks_add_up_to_the_lumped_microgrids(nets, data):
    for mg in data.microgrids:
        net = nets[mg.name]
        assert 4 <= len(net.buses) <= 6
        assert sum(net.load_mw_by_tier().values()) == pytest.approx(mg.load_p_peak_mw)
        assert sum(u.p_max_mw for u in net.units_of("mt")) == pytest.approx(mg.mt_p_max_mw)
        assert sum(u.p_max_mw for u in net.units_of("wind")) == pytest.approx(mg.wind_p_rated_mw)
        assert all(net.load_mw_by_tier()[t] > 0 for t in (1, 2, 3))
        assert net.grid_forming


def test_hull_is_a_convex_counter_clockwise_polygon(projections):
    for proj in projections.values():
        hull = proj.offer.hull
        v = np.asarray(hull.vertices)
        assert len(v) >= 4 and hull.area_mw_mvar > 0
        edges = np.roll(v, -1, axis=0) - v
        turns = (
            edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
            - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
        )
        assert (turns > 0).all()  # strictly convex, counter-clockwise
        assert hull.contains(0.0, 0.0)  # the microgrid can island
        for (a, b), off, p in zip(hull.normals, hull.offsets, v, strict=True):
            assert math.hypot(a, b) == pytest.approx(1.0)
            assert a * p[0] + b * p[1] == pytest.approx(off)


def test_every_vertex_is_feasible_for_the_full_model(nets, conditions, projections):
    for g, proj in projections.items():
        for p, q in proj.offer.hull.vertices:
            assert proj.projector.contains(p, q), (g, p, q)
    # and on a freshly built model, independent of the projector's solver state
    p, q = projections["MG1"].offer.hull.vertices[0]
    assert is_feasible_point(nets["MG1"], conditions["MG1"], p, q)


def test_points_sampled_inside_are_feasible(projections):
    rng = np.random.default_rng(2026)
    for g, proj in projections.items():
        inside = sample_inside(proj.offer.hull, 40, rng)
        assert all(proj.projector.contains(p, q) for p, q in inside), g


def test_points_beyond_each_facet_are_infeasible(projections):
    for g, proj in projections.items():
        outside = points_beyond_facets(proj.offer.hull, THRESHOLD_MW + MARGIN_MW)
        assert len(outside) == len(proj.offer.hull.vertices)
        assert not any(proj.projector.contains(p, q) for p, q in outside), g


def test_accuracy_summary(projections):
    for proj in projections.values():
        check = check_accuracy(proj.projector, proj.offer.hull, n_inside=20, margin_mw=MARGIN_MW)
        assert check.ok, check


def test_polygon_extremes_match_the_data(nets, conditions, projections):
    """Max import = the microgrid's whole load (storage does not charge); max export = the
    sum of its sources or the feeder head's rating (inscribed 12-gon), whichever is lower."""
    for g, proj in projections.items():
        net, cond = nets[g], conditions[g]
        p_min, p_max, _, _ = proj.offer.hull.box()
        assert p_max == pytest.approx(sum(net.load_mw_by_tier().values()), abs=1e-6)
        head = next(ln for ln in net.lines if ln.from_bus == net.pcc_bus)
        export = min(
            sum(unit_p_max_mw(net, cond).values()),
            head.s_max_mva * math.cos(math.pi / N_SIDES),
        )
        assert -p_min == pytest.approx(export, abs=1e-6)
        assert proj.offer.source_p_mw[1] == pytest.approx(sum(unit_p_max_mw(net, cond).values()))
        assert proj.offer.tier_max_mw == pytest.approx(net.load_mw_by_tier())


def test_a_smaller_threshold_keeps_the_polygon(nets, conditions, projections):
    """The search has converged: every vertex is found, a finer threshold adds none."""
    fine = project_microgrid(nets["MG1"], conditions["MG1"], NO_PREFERENCE, 1e-6)
    coarse = projections["MG1"].offer.hull
    assert fine.offer.hull.area_mw_mvar == pytest.approx(coarse.area_mw_mvar, abs=1e-6)
    assert len(fine.offer.hull.vertices) == len(coarse.vertices)


def test_vertex_search_changes_only_the_objective(nets, conditions):
    """One persistent HiGHS instance: the solves after the first load only change costs."""
    proj = project_microgrid(nets["MG2"], conditions["MG2"], NO_PREFERENCE, THRESHOLD_MW)
    highs = proj.projector.lp.highs
    n_cols, n_rows = highs.getNumCol(), highs.getNumRow()
    assert proj.projector.contains(0.0, 0.0)
    assert (highs.getNumCol(), highs.getNumRow()) == (n_cols, n_rows)
    assert proj.offer.hull.n_solves <= 4 + 3 * len(proj.offer.hull.vertices)


def test_builder_returns_an_unsolved_model(nets, conditions):
    m = build_microgrid_model(nets["MG3"], conditions["MG3"])
    assert m.tie_p.value is None and m.tie_q.value is None


def test_preference_below_one_is_refused(nets, conditions):
    with pytest.raises(PreferenceError, match=">= 1"):
        project_microgrid(nets["MG1"], conditions["MG1"], {1: 0.5, 2: 1.0, 3: 1.0})
    with pytest.raises(PreferenceError, match="one coefficient per tier"):
        project_microgrid(nets["MG1"], conditions["MG1"], {1: 1.0})


# --- malformed internal-network data ---------------------------------------------------------
@pytest.fixture
def tables():
    return {name: pd.read_csv(DATA_DIR / name) for name in COLUMNS}


def refused(data, tables, *parts: str) -> str:
    with pytest.raises(MicrogridDataError) as err:
        internal_networks_from_tables(data, tables)
    text = str(err.value)
    for part in (*parts, "Fix:"):
        assert part in text, text
    return text


def test_negative_line_resistance_is_refused(data, tables):
    tables[LINES_FILE].loc[1, "r_ohm"] = -0.3
    refused(data, tables, LINES_FILE, "MG1 line L2", "r_ohm", "negative")


def test_line_to_an_unknown_bus_is_refused(data, tables):
    tables[LINES_FILE].loc[2, "to_bus"] = 9
    refused(data, tables, LINES_FILE, "to_bus", "bus 9 is not a bus of MG1")


def test_a_loop_is_refused(data, tables):
    extra = pd.DataFrame(
        [
            {
                "microgrid": "MG2",
                "line": "L5",
                "from_bus": 3,
                "to_bus": 4,
                "r_ohm": 0.2,
                "x_ohm": 0.1,
                "max_i_ka": 0.08,
            }
        ]
    )
    tables[LINES_FILE] = pd.concat([tables[LINES_FILE], extra], ignore_index=True)
    refused(data, tables, LINES_FILE, "MG2", "radial tree")


def test_loads_not_adding_up_to_the_lumped_peak_are_refused(data, tables):
    tables[BUSES_FILE].loc[1, "load_p_mw"] = 0.2
    refused(data, tables, BUSES_FILE, "MG1", "load_p_peak_mw")


def test_two_pcc_buses_are_refused(data, tables):
    tables[BUSES_FILE].loc[6, "is_pcc"] = 1
    refused(data, tables, BUSES_FILE, "is_pcc", "exactly one")


def test_unknown_unit_kind_and_missing_column_are_refused(data, tables):
    tables[UNITS_FILE].loc[0, "kind"] = "diesel"
    refused(data, tables, UNITS_FILE, "kind", "'diesel'")
    tables[UNITS_FILE] = tables[UNITS_FILE].drop(columns="q_max_mvar")
    refused(data, tables, UNITS_FILE, "q_max_mvar", "column missing")


def test_unknown_microgrid_and_tierless_load_are_refused(data, tables):
    tables[UNITS_FILE].loc[0, "microgrid"] = "MG9"
    refused(data, tables, UNITS_FILE, "row 2", "'MG9'")
    tables = {name: pd.read_csv(DATA_DIR / name) for name in COLUMNS}
    tables[BUSES_FILE].loc[1, "tier"] = 4
    refused(data, tables, BUSES_FILE, "MG1 bus 1", "tier")
