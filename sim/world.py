"""Assembly of the mosaik world: which simulators, which entities, which connections.

Data flow per physical step ``t`` (time in seconds, ``time_resolution = 1``)::

    Profile --p_mw--> Grid's Unit entity (p_profile_mw)
    Grid <--setpoints_mw, switch_closed_cmd-- Controller
    Profile --forecast_mw, scenarios_mw, scenario_prob--------> Controller
    Grid --soc_end_mwh, mt_p_mw, switch_closed (time-shifted)--> Controller
    FaultInjector --faults (event, triggers the grid)--> Grid
    Grid, Controller, Profile --> Recorder (writes the run directory)

The time-shifted connection closes the measurement loop: the controller at ``t`` sees
the grid's state at the end of the previous step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mosaik
from mosaik.scenario import Entity

from mgcosim.scenarios.loader import Scenario
from mgcosim.sim.controller_sim import COMMANDS, agent_mode, check_controller
from mgcosim.sim.grid_sim import OUTPUTS as GRID_OUTPUTS
from mgcosim.sim.units import is_wind, stochastic_units

SIMULATORS = {
    "Grid": "mgcosim.sim.grid_sim:GridSim",
    "Profiles": "mgcosim.sim.profile_sim:ProfileSim",
    "Controller": "mgcosim.sim.controller_sim:ControllerSim",
    "Faults": "mgcosim.sim.fault_sim:FaultSim",
    "Recorder": "mgcosim.sim.recorder_sim:RecorderSim",
    "MicrogridAgent": "mgcosim.sim.agent_sim:MicrogridAgentSim",
}


# How long a simulator process may take to start and connect, and to stop. mosaik's default
# (10 s) is shorter than a Python process importing pandapower and Pyomo takes on a loaded
# machine; these limits only decide a failure, never a result.
MOSAIK_CONFIG = {"start_timeout": 600.0, "stop_timeout": 60.0}


def sim_config(separate: frozenset[str] = frozenset()) -> dict:
    """mosaik sim config; simulators named in ``separate`` run as their own processes."""
    config = {}
    for name, target in SIMULATORS.items():
        module = target.split(":")[0]
        config[name] = (
            {"cmd": f"{sys.executable} -m {module} %(addr)s"}
            if name in separate
            else {"python": target}
        )
    return config


def initial_measurements(scenario: Scenario) -> dict:
    """What the controller sees at t = 0, before the grid has stepped."""
    mgs = scenario.data.microgrids
    soc = {f"{mg.name}_ess": mg.ess_e_init_mwh for mg in mgs}
    return {
        "soc_end_mwh": soc | {u.name: u.ess_e_init_mwh for u in scenario.data.mess},
        "mt_p_mw": {f"{mg.name}_mt": 0.0 for mg in mgs},
        "switch_closed": {},
    }


def build_world(
    scenario: Scenario, out_dir: Path, separate: frozenset[str] = frozenset()
) -> mosaik.World:
    """A ready-to-run world for ``scenario`` writing to ``out_dir`` (call ``run`` on it)."""
    if scenario.path is None:
        raise ValueError("build_world needs a scenario loaded from a file (scenario.path)")
    check_controller(scenario)  # refuse an unavailable controller before anything starts
    path = str(scenario.path)
    scenario, buses = place_mess(scenario, out_dir)
    world = mosaik.World(
        sim_config(separate),
        MOSAIK_CONFIG,
        time_resolution=1.0,
        skip_greetings=True,
        max_loop_iterations=max_loop_iterations(scenario),
    )
    grid = world.start("Grid", scenario_path=path, mess_buses=buses).Grid()
    agents: dict[str, Entity] = {}
    if agent_mode(scenario):  # the DSO's controller and the microgrid agents: one loop group
        with world.group():
            ctrl = world.start("Controller", scenario_path=path, mess_buses=buses).Controller()
            agents = add_agents(world, scenario, path, ctrl, grid)
    else:
        ctrl = world.start("Controller", scenario_path=path, mess_buses=buses).Controller()
    rec = world.start("Recorder", scenario_path=path).Recorder(out_dir=str(out_dir))
    profiles = world.start("Profiles", scenario_path=path)
    units = unit_entities(grid)
    for unit in stochastic_units(scenario):
        entity = profiles.Profile(unit=unit)
        world.connect(entity, units[unit], ("p_mw", "p_profile_mw"))
        world.connect(entity, rec, "p_mw")
        planner = agents.get(unit.rsplit("_", 1)[0], ctrl)  # a microgrid's units: its agent
        world.connect(entity, planner, "forecast_mw")
        if is_wind(unit):
            world.connect(entity, planner, "scenarios_mw", "scenario_prob")
    world.connect(ctrl, grid, *COMMANDS)
    world.connect(
        grid,
        ctrl,
        "soc_end_mwh",
        "mt_p_mw",
        "switch_closed",
        time_shifted=True,
        initial_data=initial_measurements(scenario),
    )
    world.connect(grid, rec, *GRID_OUTPUTS)
    world.connect(ctrl, rec, "setpoints_mw", "plan_info")
    if scenario.faults:
        injector = world.start("Faults", scenario_path=path).FaultInjector()
        world.connect(injector, grid, "faults")
        world.connect(injector, ctrl, "faults")
        world.set_initial_event(injector.sid, min(f.start_s for f in scenario.faults))
    return world


def max_loop_iterations(scenario: Scenario | None = None) -> int:
    """Sub-steps of one same-time loop in agent mode: every inner ADMM iteration, the
    horizon, finish (repeated under message faults) and fallback exchanges, with a margin
    (mosaik's default is 100)."""
    from mgcosim.controllers.admm import ADMMSettings

    s = ADMMSettings()
    comms = scenario.communication if scenario is not None else None
    return s.max_outer * s.max_inner + 10 + (comms.finish_attempts if comms else 0)


def add_agents(
    world: mosaik.World, scenario: Scenario, path: str, ctrl: Entity, grid: Entity
) -> dict[str, Entity]:
    """One MicrogridAgent simulator per microgrid (each its own process when separate),
    wired to the controller: its messages out (strong), the answers back (weak, the same
    time), its own storage and turbine measurements from the grid (time-shifted)."""
    agents = {}
    for mg in scenario.data.microgrids:
        g = mg.name
        agent = world.start("MicrogridAgent", scenario_path=path, microgrid=g).MicrogridAgent()
        world.connect(ctrl, agent, "admm_request", transform=_addressed_to(g))
        world.connect(agent, ctrl, "admm_reply", weak=True)
        own = {f"{g}_ess": mg.ess_e_init_mwh}, {f"{g}_mt": 0.0}
        world.connect(
            grid,
            agent,
            ("soc_end_mwh", "soc_end_mwh"),
            ("mt_p_mw", "mt_p_mw"),
            time_shifted=True,
            initial_data={"soc_end_mwh": own[0], "mt_p_mw": own[1]},
            transform=_own_units(g),
        )
        agents[g] = agent
    return agents


def _addressed_to(name: str):
    """The part of the controller's message batch for microgrid ``name``."""
    return lambda batch: None if batch is None else batch.get(name)


def _own_units(name: str):
    """A microgrid's own entries of a per-unit dict (its storage, its turbine)."""
    return lambda d: d if d is None else {k: v for k, v in d.items() if k.startswith(f"{name}_")}


def unit_entities(grid: Entity) -> dict[str, Entity]:
    """The grid's Unit child entities by unit name (``eid``)."""
    return {child.eid: child for child in grid.children if child.type == "Unit"}


def place_mess(scenario: Scenario, out_dir: Path) -> tuple[Scenario, list[int]]:
    """The scenario with its mobile storage placed (computed once, here, when asked for);
    the placement is written to ``mess_placement.json`` when there is one."""
    if scenario.mess.placement == "none":
        (out_dir / "mess_placement.json").unlink(missing_ok=True)  # a previous run's
        return scenario, []
    from mgcosim.sim.mess import placement, with_mess
    from mgcosim.sim.results import write_json

    record = placement(scenario)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "mess_placement.json", record)
    return with_mess(scenario, record["buses"]), list(record["buses"])


def run_scenario(
    scenario: Scenario, out_dir: Path, progress: bool = True, separate: frozenset[str] = frozenset()
) -> None:
    """Run the whole scenario; results are written to ``out_dir`` as the run goes."""
    world = build_world(scenario, out_dir, separate)
    world.run(until=scenario.duration_s, print_progress=progress)


def quiet_mosaik_logs() -> None:
    """mosaik logs every simulator start at INFO; keep warnings and errors only."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
