"""mgcosim's simulators in your own mosaik world: :func:`add_mgcosim`.

It starts the grid (and, as asked, the controller and the fault injector) of a scenario in a
:class:`mosaik.World` and returns the entities to connect (:class:`MgcosimEntities`)::

    world = mosaik.World({"CSV": {"python": "mosaik_csv:CSV"}}, time_resolution=1.0)
    mg = add_mgcosim(world, "my_scenario.toml")
    csv = world.start("CSV", sim_start="2026-06-01 00:00:00", datafile="loads.csv")
    data = csv.Loads()
    world.connect(data, mg.units["load_b2"], ("load_b2", "p_profile_mw"))
    ...
    world.run(until=mg.scenario.duration_s)

What it connects itself: controller -> grid commands, grid -> controller measurements
(time-shifted), fault injector -> grid and controller, and (``forecasts="scenario"``)
mgcosim's own Profile entities' forecasts -> controller. What you connect: a source of
``p_profile_mw`` (MW) for every unit in ``mg.profile_units`` (loads, wind, PV), except those
named in ``scenario_feeds`` (fed from the scenario's own profiles). Sinks read the flat
attributes of ``mg.units``, ``mg.buses`` and ``mg.branches`` (see :func:`attribute_tables`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import mosaik
from mosaik.scenario import Entity

from mgcosim.scenarios.loader import Scenario, load_scenario
from mgcosim.sim.attrdoc import markdown_table
from mgcosim.sim.units import is_wind
from mgcosim.sim.world import SIMULATORS, initial_measurements

SIM_NAMES = {name: f"Mgcosim{name}" for name in ("Grid", "Controller", "Faults", "Profiles")}
FORECAST_CHOICES = ("scenario", "none")


@dataclass
class MgcosimEntities:
    """The entities :func:`add_mgcosim` created, keyed as their element names."""

    world: mosaik.World
    scenario: Scenario
    grid: Entity  # the whole step as dicts (mgcosim's own controller and recorder use it)
    units: dict[str, Entity]  # unit name -> Unit entity (input p_profile_mw; p_mw, soc_mwh)
    buses: dict[str, Entity]  # bus label ("18", "MG1") -> Bus entity (vm_pu)
    branches: dict[str, Entity]  # branch label ("6", "MG1_pcc") -> Branch entity
    profile_units: list[str]  # the units that take p_profile_mw (loads, wind, PV)
    controller: Entity | None = None
    faults: Entity | None = None
    profiles: dict[str, Entity] = field(default_factory=dict)  # mgcosim's Profile entities
    _profile_sim: object = None

    def profile(self, unit: str) -> Entity:
        """mgcosim's Profile entity of ``unit`` (the scenario's profile and forecast model)."""
        if unit not in self.profile_units:
            raise ValueError(f"{unit!r} is no profile unit; profile units: {self.profile_units}")
        if self._profile_sim is None:
            path = str(self.scenario.path)
            self._profile_sim = self.world.start(SIM_NAMES["Profiles"], scenario_path=path)
        if unit not in self.profiles:
            self.profiles[unit] = self._profile_sim.Profile(unit=unit)
        return self.profiles[unit]

    def feed_from_scenario(self, units: Iterable[str]) -> None:
        """Feed ``units`` from the scenario's own profiles (realisations, MW)."""
        for unit in units:
            self.world.connect(self.profile(unit), self.units[unit], ("p_mw", "p_profile_mw"))

    def forecasts_from_scenario(self) -> None:
        """Connect the scenario's forecasts of every profile unit to the controller."""
        for unit in self.profile_units:
            self.world.connect(self.profile(unit), self.controller, "forecast_mw")
            if is_wind(unit):
                self.world.connect(
                    self.profile(unit), self.controller, "scenarios_mw", "scenario_prob"
                )


def add_mgcosim(
    world: mosaik.World,
    scenario: str | Path | Scenario,
    *,
    controller: bool = True,
    faults: bool = True,
    forecasts: str = "scenario",
    scenario_feeds: Iterable[str] = (),
    unfed_units: str = "refuse",
) -> MgcosimEntities:
    """Start mgcosim's simulators for ``scenario`` in ``world``; the entities to connect.

    - ``controller``: the scenario's controller, wired to the grid both ways.
    - ``faults``: the scenario's fault events, sent to the grid (and the controller).
    - ``forecasts``: ``"scenario"`` connects mgcosim's Profile entities (the scenario's
      profile and forecast-error model) to the controller; ``"none"`` leaves it to you (one
      source per unit whose entity id is the unit name, attribute ``forecast_mw``).
    - ``scenario_feeds``: units whose ``p_profile_mw`` comes from the scenario's profiles
      (:meth:`MgcosimEntities.feed_from_scenario` does the same later).
    - ``unfed_units``: ``"refuse"`` (the first step refuses a unit nobody feeds) or
      ``"zero"`` (such a unit takes 0 MW: no demand, no renewable output).

    The world must use ``time_resolution=1.0`` and a ``sim_config`` dict; the simulators are
    added to it as ``MgcosimGrid``, ``MgcosimController``, ``MgcosimFaults`` and
    ``MgcosimProfiles``.
    """
    scenario = scenario if isinstance(scenario, Scenario) else load_scenario(Path(scenario))
    _check_world(world, scenario, forecasts)
    path = str(scenario.path)
    scenario, buses = _placed(scenario)
    for name, sim_name in SIM_NAMES.items():
        world.sim_config.setdefault(sim_name, {"python": SIMULATORS[name]})
    grid = world.start(
        SIM_NAMES["Grid"], scenario_path=path, mess_buses=buses, unfed_units=unfed_units
    ).Grid()
    out = MgcosimEntities(
        world=world,
        scenario=scenario,
        grid=grid,
        units=_children(grid, "Unit", ""),
        buses=_children(grid, "Bus", "bus_"),
        branches=_children(grid, "Branch", "branch_"),
        profile_units=[u.eid for u in grid.children if u.extra_info.get("takes_profile")],
    )
    out.feed_from_scenario(scenario_feeds)
    if controller:
        out.controller = _add_controller(world, out, path, buses)
        if forecasts == "scenario":
            out.forecasts_from_scenario()
    if faults and scenario.faults:
        out.faults = world.start(SIM_NAMES["Faults"], scenario_path=path).FaultInjector()
        world.connect(out.faults, grid, "faults")
        if out.controller is not None:
            world.connect(out.faults, out.controller, "faults")
        world.set_initial_event(out.faults.sid, min(f.start_s for f in scenario.faults))
    return out


def _check_world(world: mosaik.World, scenario: Scenario, forecasts: str) -> None:
    if scenario.path is None:
        raise ValueError("add_mgcosim needs a scenario loaded from a file (scenario.path)")
    if world.time_resolution != 1.0:
        raise ValueError("mgcosim's simulators work in seconds: use World(time_resolution=1.0)")
    if not isinstance(world.sim_config, dict):
        raise ValueError("add_mgcosim adds its simulators to world.sim_config: give World a dict")
    if forecasts not in FORECAST_CHOICES:
        raise ValueError(f"forecasts={forecasts!r}: use one of {', '.join(FORECAST_CHOICES)}")


def _placed(scenario: Scenario) -> tuple[Scenario, list[int]]:
    """The scenario with its mobile storage placed, when it has any."""
    if scenario.mess.placement == "none":
        return scenario, []
    from mgcosim.sim.mess import placement, with_mess

    buses = list(placement(scenario)["buses"])
    return with_mess(scenario, buses), buses


def _children(grid: Entity, model: str, prefix: str) -> dict[str, Entity]:
    return {c.eid.removeprefix(prefix): c for c in grid.children if c.type == model}


def _add_controller(world: mosaik.World, out: MgcosimEntities, path: str, buses) -> Entity:
    from mgcosim.sim.controller_sim import COMMANDS, check_controller

    check_controller(out.scenario)
    ctrl = world.start(SIM_NAMES["Controller"], scenario_path=path, mess_buses=buses).Controller()
    world.connect(ctrl, out.grid, *COMMANDS)
    world.connect(
        out.grid,
        ctrl,
        "soc_end_mwh",
        "mt_p_mw",
        "switch_closed",
        time_shifted=True,
        initial_data=initial_measurements(out.scenario),
    )
    return ctrl


def attribute_tables() -> str:
    """Markdown tables of every attribute of mgcosim's mosaik models (for the README)."""
    from mgcosim.sim.controller_sim import CONTROLLER_ATTRS
    from mgcosim.sim.fault_sim import FAULT_ATTRS
    from mgcosim.sim.grid_sim import BRANCH_ATTRS, BUS_ATTRS, GRID_ATTRS, UNIT_ATTRS
    from mgcosim.sim.profile_sim import PROFILE_ATTRS

    tables = {
        "Unit": UNIT_ATTRS,
        "Bus": BUS_ATTRS,
        "Branch": BRANCH_ATTRS,
        "Grid": GRID_ATTRS,
        "Controller": CONTROLLER_ATTRS,
        "FaultInjector": FAULT_ATTRS,
        "Profile": PROFILE_ATTRS,
    }
    return "\n\n".join(markdown_table(model, doc) for model, doc in tables.items())
