"""Mobile storage (MESS) of a co-simulation: the placement a scenario asks for (seed 002).

``[mess] placement = "given"`` places one unit at each listed bus when the scenario is
loaded. ``"robust"`` and ``"deterministic"`` are computed here once, before the world
starts: the event is the scenario's first fault time (damaged branches, main-grid loss,
start hour, repair hours rounded up to hourly periods, as ``mgcosim preposition``), solved
by column-and-constraint generation (robust) or on the forecast PV (deterministic). The
units then idle, fully charged, until the restoration controller dispatches them; the
placement and its solve figures are written to the run directory
(``mess_placement.json``). The first stage's switch states are not applied: the
restoration controller decides switching once the event happens.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable

from mgcosim.scenarios.loader import Scenario

log = logging.getLogger(__name__)


def with_mess(scenario: Scenario, buses: Iterable[int]) -> Scenario:
    """The scenario with one unit of ``networks/data/mess.csv`` at each bus."""
    from mgcosim.scenarios.loader import mess_units

    data = dataclasses.replace(scenario.data, mess=mess_units(buses))
    return dataclasses.replace(scenario, data=data)


def placed(scenario: Scenario) -> Scenario:
    """The scenario with its units placed (computed here for a computed placement)."""
    if scenario.mess.placement in ("none", "given"):
        return scenario
    return with_mess(scenario, placement(scenario)["buses"])


def scenario_event(scenario, default) -> tuple[frozenset[int], bool, float, int]:
    """Damaged branches, main grid available, start (clock) hour, hourly periods of the
    scenario's first fault time (the default event at 10 h for 4 h when it has no faults)."""
    if not scenario.faults:
        return frozenset(default.damaged_branches), default.main_grid_available, 10.0, 4
    start = min(f.start_s for f in scenario.faults)
    now = [f for f in scenario.faults if f.start_s == start]
    damaged = frozenset(f.branch_ieee for f in now if f.kind == "branch")
    main_grid = not any(f.kind == "main_grid" for f in now)
    repair_h = max(f.repair_s for f in now) / 3600
    t0 = scenario.start
    start_h = t0.hour + t0.minute / 60 + t0.second / 3600 + start / 3600  # after midnight, day 1
    return damaged, main_grid, start_h, max(1, math.ceil(repair_h - 1e-9))


def scenario_case(scenario, mess, event, start_h: float, periods: int):
    """The robust model's case on the scenario's network and daily shapes."""
    from mgcosim.controllers.dso import dso_data
    from mgcosim.controllers.robust_data import robust_case
    from mgcosim.networks.ieee33 import build_ieee33

    data = scenario.data
    return robust_case(
        dso_data(build_ieee33(data), data),
        data,
        mess,
        event,
        start_hour=start_h,
        n_periods=periods,
        profiles=scenario.profiles.hourly_table(start_h, periods),
    )


def placement(scenario: Scenario) -> dict:
    """The scenario's MESS buses and how they were obtained (``buses`` plus solve figures)."""
    settings = scenario.mess
    if settings.placement in ("none", "given"):
        return {"placement": settings.placement, "buses": [u.bus_ieee for u in scenario.data.mess]}
    return computed_placement(scenario, settings.placement)


def computed_placement(scenario: Scenario, method: str) -> dict:
    """Robust (C&CG) or deterministic first stage for the scenario's event."""
    from mgcosim.controllers.robust_ccg import solve_deterministic, solve_robust
    from mgcosim.controllers.robust_data import DEFAULT_EVENT, Event
    from mgcosim.networks.params import load_mess_params

    damaged, main_grid, start_h, periods = scenario_event(scenario, DEFAULT_EVENT)
    event = Event(damaged, main_grid)
    case = scenario_case(scenario, load_mess_params(), event, start_h, periods)
    if method == "robust":
        result = solve_robust(case)
        figures = {
            "lower_bound_cny": result.lower_bound_cny,
            "upper_bound_cny": result.upper_bound_cny,
            "gap": result.gap,
            "iterations": len(result.iterations),
        }
    else:
        result = solve_deterministic(case)
        figures = {"worst_case_total_cny": result.total_cny}
    buses = sorted(result.first_stage.mess_buses)
    log.info("MESS %s placement for %s: buses %s", method, scenario.name, buses)
    return {
        "placement": method,
        "buses": buses,
        "event": {
            "damaged_branches": sorted(damaged),
            "main_grid_available": main_grid,
            "start_h": start_h,
            "periods_h": periods,
        },
        "time_s": result.time_s,
    } | figures
