"""Shared helpers: scenario files written into a temporary folder, and small runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import load_network_data
from mgcosim.scenarios.loader import load_scenario

REPO = Path(__file__).parents[1]


def start_cli_run(path: Path, out: Path, **popen: object) -> subprocess.Popen:
    """``mgcosim run PATH --out OUT`` as a process of its own, started in the repository."""
    command = [sys.executable, "-m", "mgcosim.sim.cli", "run", str(path), "--out", str(out)]
    return subprocess.Popen([*command, "--no-progress"], cwd=REPO, **popen)


def toml_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_scenario(
    folder: Path, tables: str = "", file_name: str = "scenario.toml", **top: object
) -> Path:
    """A scenario file with the given top-level keys (defaults: 6 h, seed 7) and tables."""
    fields = {"name": "test", "duration_h": 6, "seed": 7} | top
    text = "\n".join(f"{k} = {toml_value(v)}" for k, v in fields.items()) + "\n" + tables
    path = folder / file_name
    path.write_text(text)
    return path


@pytest.fixture
def scenario_file(tmp_path: Path):
    """Factory: ``scenario_file(tables=..., **top)`` -> path of a scenario in tmp_path."""
    counter = iter(range(1000))

    def make(tables: str = "", **top: object) -> Path:
        return write_scenario(tmp_path, tables, f"scenario_{next(counter)}.toml", **top)

    return make


@pytest.fixture
def run(tmp_path: Path):
    """Factory: run a scenario file through the real mosaik world; returns the run directory."""
    from mgcosim.sim.world import run_scenario

    counter = iter(range(1000))

    def go(path: Path, **kwargs) -> Path:
        out = tmp_path / f"run_{next(counter)}"
        run_scenario(load_scenario(path), out, progress=False, **kwargs)
        return out

    return go


@pytest.fixture(scope="module")
def data():
    """The built-in network data."""
    return load_network_data()


@pytest.fixture(scope="module")
def base_net(data):
    """A freshly built IEEE 33-bus net with microgrids (do not modify: module scope)."""
    return build_ieee33(data)


@pytest.fixture(scope="module")
def dd(base_net, data):
    """The DSO model's data of the default network (IEEE numbering)."""
    from mgcosim.controllers.dso import dso_data

    return dso_data(base_net, data)
