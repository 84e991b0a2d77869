"""Scenario files (TOML): timing, controller, parameter overrides, profiles and faults."""

from mgcosim.scenarios.loader import (
    CONTROLLERS,
    FaultEvent,
    ProfileSettings,
    Scenario,
    ScenarioError,
    default_scenario_path,
    load_scenario,
    load_scenario_text,
)

__all__ = [
    "CONTROLLERS",
    "FaultEvent",
    "ProfileSettings",
    "Scenario",
    "ScenarioError",
    "default_scenario_path",
    "load_scenario",
    "load_scenario_text",
]
