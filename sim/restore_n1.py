"""``mgcosim restore --n1``: the N-1 restoration study of a scenario.

A fault on every sectional branch (or the ones given) at the DSO's peak-load step; each
case's centralised plan is checked for a radial energised network, for tier-1 restoration
against the proven tier-1 maximum (:func:`tier1_max_model`) and by an AC power flow
(:func:`sim.restore.ac_check_plan`). Returns data; :mod:`sim.restore_cli` prints it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from mgcosim.controllers.solve import MipLimits
from mgcosim.scenarios.loader import Scenario
from mgcosim.sim.restore import MIP_REL_GAP, PERIOD_S, STUDY_NODE_LIMIT, ac_check_plan

if TYPE_CHECKING:  # heavy imports (pandapower, pyomo) stay out of the CLI's start-up
    from mgcosim.controllers.dso import DSOData
    from mgcosim.controllers.restoration_data import RestorationInputs
    from mgcosim.networks.params import NetworkData


N1_PERIODS = 4  # short horizon: 1 h in 15-min periods
V_BAND_PU = (0.9, 1.1)  # AC voltage band of the check (reported when left, never enforced)
TOL_MW = 1e-6


def num_text(value: float | None, digits: int = 1) -> str:
    """A figure for the tables ("n/a" for None, no "-0.0")."""
    return "n/a" if value is None else f"{value + 0.0:.{digits}f}".replace("-0.0", "0.0")


def peak_load_step(scenario: Scenario, units: dict) -> int:
    """Physical step of the run where the total day-ahead DSO demand peaks."""
    names = [u for u in units if u.startswith("load_b")]
    total = sum(units[u].base_forecast_mw[: scenario.n_steps] for u in names)
    return int(np.argmax(total))


def n1_wind_mw(scenario: Scenario, wind_pu: float | None) -> tuple[dict[str, float], float | None]:
    """Microgrid wind power of the sweep and the peak-load hour it was read at.

    ``wind_pu`` given: that share of each turbine's rating (hour None). Otherwise the
    scenario's day-ahead (base forecast) wind at the physical step of the DSO peak load.
    """
    if wind_pu is not None:
        return {mg.name: wind_pu * mg.wind_p_rated_mw for mg in scenario.data.microgrids}, None
    from mgcosim.sim.units import stochastic_units

    units = stochastic_units(scenario)
    k = peak_load_step(scenario, units)
    wind = {
        mg.name: float(units[f"{mg.name}_wind"].base_forecast_mw[k])
        for mg in scenario.data.microgrids
    }
    start = scenario.start
    hour = (start.hour + start.minute / 60 + k * scenario.physical_step_s / 3600) % 24
    return wind, hour


def wind_source(wind_pu: float | None, hour: float | None) -> str:
    if wind_pu is not None:
        return f"{wind_pu:g} pu of rating"
    return f"scenario day-ahead at the DSO peak-load hour {hour:g} h"


def n1_inputs(
    dd: DSOData, data: NetworkData, branch: int, n_periods: int, wind_mw: dict[str, float]
) -> RestorationInputs:
    """Fault on ``branch`` at peak load: DSO demand at nominal (the IEEE 33 base case),
    microgrid loads at peak, the given wind, no PV, storage at its initial SOC, main grid on."""
    from mgcosim.controllers.restoration_data import MicrogridRestorationInputs, nominal_inputs

    inp = nominal_inputs(
        dd, data, n_periods=n_periods, faulted={branch}, main_grid_available=True, pv_pu=0.0
    )
    flat = np.ones(n_periods)
    mgs = {
        g: MicrogridRestorationInputs(
            params=mg.params,
            load_mw=mg.params.load_p_peak_mw * flat,
            wind_mw=wind_mw[g] * flat,
            soc_mwh=mg.params.ess_e_init_mwh,
        )
        for g, mg in inp.microgrids.items()
    }
    return replace(inp, microgrids=mgs)


def tier1_max_model(dd: DSOData, data: NetworkData, inp: RestorationInputs):
    """The centralised model with an objective counting only tier-1 load of period 1 (MW).

    Every constraint of the restoration stays (the whole horizon: storage energy, monotone
    pickup), so its optimum is the most tier-1 load any feasible plan restores in period 1.
    """
    import pyomo.environ as pyo

    from mgcosim.controllers.restoration import build_restoration_model

    m = build_restoration_model(dd, data, inp)
    m.obj.deactivate()
    tier1 = [b for b in m.D if m.tiers[b] == 1]
    m.obj_tier1 = pyo.Objective(expr=-pyo.quicksum(m.load_p[b, 0] * m.x[b, 0] for b in tier1))
    return m


def check_radial(dd: DSOData, period, faulted: int) -> tuple[bool, str]:
    """Every energised component (live branches) is a tree holding exactly one source."""
    from mgcosim.controllers.restoration_data import radial_problem

    why = radial_problem(dd, period, frozenset({faulted}))
    return not why, why


def unreachable_reason(dd: DSOData, inp: RestorationInputs, buses: set[int]) -> str:
    """Why tier-1 buses stay dark: no source reachable, or limits (capacity, voltage)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(dd.buses)
    graph.add_edges_from((b.from_bus, b.to_bus) for b in dd.branches if b.ieee not in inp.faulted)
    sources = {dd.mg_bus[g] for g in inp.microgrids} | (
        {dd.root} if inp.main_grid_available else set()
    )
    dark = sorted(b for b in buses if not nx.node_connected_component(graph, b) & sources)
    limited = sorted(set(buses) - set(dark))
    parts = []
    if dark:
        parts.append(f"no source reachable from buses {dark}")
    if limited:
        parts.append(f"source reachable but capacity/voltage limits at buses {limited}")
    return "; ".join(parts)


def n1_case(
    dd: DSOData,
    data: NetworkData,
    branch: int,
    n_periods: int,
    wind_mw: dict[str, float],
    limits: MipLimits,
) -> dict:
    """One faulted branch: the three solves, the radiality, tier-1 and AC checks."""
    from mgcosim.controllers.dso import default_topology
    from mgcosim.controllers.errors import OptimisationError
    from mgcosim.controllers.restoration import build_restoration_model
    from mgcosim.controllers.restoration_data import subnetworks
    from mgcosim.controllers.restoration_solve import solve_independent, solve_restoration

    start = time.perf_counter()
    inp = n1_inputs(dd, data, branch, n_periods, wind_mw)
    parts = subnetworks(dd, inp.faulted, default_topology(dd), True)
    cut_off = set().union(*parts[1:]) if len(parts) > 1 else set()
    tier1_cut = sorted(b for b in cut_off if data.tier_of(b) == 1 and b in dd.load_p_nom_mw)
    demand = {b: float(inp.demand_mw[b][0]) for b in tier1_cut}
    row: dict = {
        "branch": branch,
        "cut_off_buses": sorted(cut_off),
        "tier1_cut_off_buses": tier1_cut,
        "tier1_demand_cut_off_mw": sum(demand.values()),
    }
    try:
        central = solve_restoration(build_restoration_model(dd, data, inp), limits)
        independent, _ = solve_independent(dd, data, inp, limits)
        best = solve_restoration(tier1_max_model(dd, data, inp), limits)
    except OptimisationError as err:
        return row | {"error": str(err), "case_time_s": time.perf_counter() - start}
    ties = {b.ieee for b in dd.branches if b.is_tie}
    for name, res in (("centralised", central), ("independent", independent), ("max", best)):
        first = res.periods[0]
        row[f"tier1_restored_{name}_mw"] = sum(
            demand[b] for b in tier1_cut if b in first.picked_up_buses
        )
        row[f"status_{name}"] = res.status
        row[f"solve_time_{name}_s"] = res.solve_time_s
    # the tier-1 objective's best bound: no plan restores more (exact when optimal)
    row["tier1_max_bound_mw"] = -best.best_bound_cny - (
        sum(float(inp.demand_mw[b][0]) for b in dd.load_p_nom_mw if data.tier_of(b) == 1)
        - row["tier1_demand_cut_off_mw"]
    )
    row["tier1_below_max"] = (
        row["tier1_restored_centralised_mw"] < row["tier1_restored_max_mw"] - TOL_MW
    )
    missing = set(tier1_cut) - best.periods[0].picked_up_buses
    row["tier1_max_below_demand"] = bool(missing)
    row["tier1_max_reason"] = unreachable_reason(dd, inp, missing) if missing else ""
    for name, res in (("centralised", central), ("independent", independent)):
        first = res.periods[0]
        shed = sum(first.unserved_mw_by_tier.values()) + sum(first.mg_unserved_mw.values())
        row[f"shed_kw_{name}"] = 1000 * shed
        radial, why = check_radial(dd, first, branch)
        ac = ac_check_plan(
            data, inp, res, [{"name": f"n1_{branch}", "kind": "branch", "branch_ieee": branch}]
        )
        vmin, vmax = ac["ac_vmin_pu"], ac["ac_vmax_pu"]
        out_of_band = (
            not ac["ac_converged"] or vmin is None or vmin < V_BAND_PU[0] or vmax > V_BAND_PU[1]
        )
        row[name] = {
            "radial": radial,
            "radial_problem": why,
            "ties_closed": sorted(first.closed_branches & ties),
            "source_buses": sorted(first.source_buses),
            "islands": sorted(first.source_buses - {dd.root}),
            "energised_buses": sorted(first.energised_buses),
            "ac_voltage_out_of_band": out_of_band,
            "ac_violation": out_of_band or bool(ac["ac_islands_collapsed"]),
        } | ac
    row["case_time_s"] = time.perf_counter() - start
    return row


def run_n1_sweep(
    scenario: Scenario,
    n_periods: int = N1_PERIODS,
    branches: list[int] | None = None,
    node_limit: int = STUDY_NODE_LIMIT,
    wind_pu: float | None = None,
    progress=None,
) -> dict:
    """N-1 sweep over the sectional branches (all of them unless ``branches`` is given)."""
    from mgcosim.controllers.dso import dso_data
    from mgcosim.networks.ieee33 import build_ieee33

    if n_periods < 1:
        raise ValueError(f"need n_periods >= 1, got {n_periods}")
    limits = MipLimits(rel_gap=MIP_REL_GAP, node_limit=node_limit)
    start = time.perf_counter()
    data = scenario.data
    dd = dso_data(build_ieee33(data), data)
    sectional = sorted(b.ieee for b in dd.branches if not b.is_tie)
    chosen = sectional if branches is None else list(branches)
    wrong = sorted(set(chosen) - set(sectional))
    if wrong:
        raise ValueError(f"not sectional IEEE branches: {wrong} (valid: {sectional})")
    wind_mw, hour = n1_wind_mw(scenario, wind_pu)
    rows = []
    for branch in chosen:
        rows.append(n1_case(dd, data, branch, n_periods, wind_mw, limits))
        if progress is not None:
            progress(rows[-1])
    ok = [r for r in rows if "error" not in r]
    totals = {
        "cases": len(rows),
        "errors": [r["branch"] for r in rows if "error" in r],
        "all_tier1_restored": sum(
            r["tier1_restored_centralised_mw"] >= r["tier1_demand_cut_off_mw"] - TOL_MW for r in ok
        ),
        "tier1_max_below_demand": {
            str(r["branch"]): r["tier1_max_reason"] for r in ok if r["tier1_max_below_demand"]
        },
        "tier1_below_max": [r["branch"] for r in ok if r["tier1_below_max"]],
        "not_radial": [
            r["branch"]
            for r in ok
            if not (r["centralised"]["radial"] and r["independent"]["radial"])
        ],
        "ac_violations_centralised": [r["branch"] for r in ok if r["centralised"]["ac_violation"]],
        "ac_violations_independent": [r["branch"] for r in ok if r["independent"]["ac_violation"]],
        "total_time_s": time.perf_counter() - start,
    }
    return {
        "scenario": scenario.name,
        "n_periods": n_periods,
        "dt_h": PERIOD_S / 3600,
        "assumptions": {
            "dso_load_scale": 1.0,
            "mg_load": "peak (load_p_peak_mw)",
            "wind_mw": wind_mw,
            "wind_source": wind_source(wind_pu, hour),
            "pv_mw": 0.0,
            "soc": "initial (ess_e_init_mwh)",
            "main_grid_available": True,
            "v_band_pu": list(V_BAND_PU),
        },
        "rows": rows,
        "totals": totals,
    }


N1_COLUMNS = (
    ("branch", 6),
    ("cut", 4),
    ("T1 cut", 7),
    ("T1 cen", 7),
    ("T1 ind", 7),
    ("T1 max", 7),
    ("shed cen", 8),
    ("shed ind", 8),
    ("ties", 8),
    ("islands", 12),
    ("Vmin", 6),
    ("Vmax", 6),
    ("collapsed", 9),
    ("radial", 6),
    ("solve s cen/ind/max", 19),
)


def _n1_row(values: list[str]) -> str:
    return "  " + " ".join(f"{v:>{w}s}" for v, (_, w) in zip(values, N1_COLUMNS, strict=True))


def format_n1_row(r: dict) -> str:
    if "error" in r:
        return f"  {r['branch']:>6d}  error: {r['error']}"
    c = r["centralised"]
    kw = lambda mw: num_text(1000 * mw)  # noqa: E731
    flag = " !" if r["tier1_below_max"] else ""
    return (
        _n1_row(
            [
                str(r["branch"]),
                str(len(r["cut_off_buses"])),
                kw(r["tier1_demand_cut_off_mw"]),
                kw(r["tier1_restored_centralised_mw"]),
                kw(r["tier1_restored_independent_mw"]),
                kw(r["tier1_restored_max_mw"]),
                num_text(r["shed_kw_centralised"]),
                num_text(r["shed_kw_independent"]),
                ",".join(map(str, c["ties_closed"])) or "-",
                ",".join(map(str, c["islands"])) or "-",
                num_text(c["ac_vmin_pu"], 3) + ("*" if c["ac_voltage_out_of_band"] else ""),
                num_text(c["ac_vmax_pu"], 3),
                ",".join(c["ac_islands_collapsed"]) or "none",
                ("yes" if c["radial"] and r["independent"]["radial"] else "NO"),
                f"{r['solve_time_centralised_s']:.2f}/{r['solve_time_independent_s']:.2f}/"
                f"{r['solve_time_max_s']:.2f}",
            ]
        )
        + flag
    )


def n1_header(r: dict) -> str:
    a = r["assumptions"]
    wind = ", ".join(f"{g} {v:.3f}" for g, v in a["wind_mw"].items())
    return "\n".join(
        [
            f"N-1 sweep of {r['scenario']!r}: one fault per sectional branch at peak load, "
            f"{r['n_periods']} periods of {60 * r['dt_h']:g} min, main grid available",
            "  DSO demand at nominal (IEEE 33 base case), microgrid loads at peak, no PV, "
            f"storage at initial SOC, wind MW {wind} ({a['wind_source']})",
            "  T1 = tier-1 DSO load of the cut-off area in period 1 (kW): cut off, restored by "
            "the centralised / independent plan, max = most any feasible plan restores",
            "  shed = DSO + microgrid load shed in period 1 (kW); ties, islands (grid-forming "
            "microgrid buses), radial, AC check: centralised plan (* = outside "
            f"{a['v_band_pu'][0]:g}-{a['v_band_pu'][1]:g} pu); ! = centralised below the max",
            _n1_row([c for c, _ in N1_COLUMNS]),
        ]
    )


def format_n1_totals(r: dict) -> str:
    t = r["totals"]
    lines = [
        f"  cases {t['cases']} (errors: {t['errors'] or 'none'}), all tier-1 restored "
        f"(centralised) in {t['all_tier1_restored']}, centralised below the tier-1 maximum: "
        f"{t['tier1_below_max'] or 'none'}, not radial: {t['not_radial'] or 'none'}",
        f"  AC violations (voltage out of band, no convergence or collapse): centralised "
        f"{t['ac_violations_centralised'] or 'none'}, independent "
        f"{t['ac_violations_independent'] or 'none'}",
        f"  tier-1 max possible < demand in {len(t['tier1_max_below_demand'])} cases"
        + "".join(f"\n    branch {b}: {why}" for b, why in t["tier1_max_below_demand"].items()),
        f"  total time {t['total_time_s']:.1f} s",
    ]
    return "\n".join(lines)


def format_n1(r: dict) -> str:
    return "\n".join([n1_header(r), *(format_n1_row(x) for x in r["rows"]), format_n1_totals(r)])
