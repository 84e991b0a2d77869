"""mgcosim's grid and controller in your own mosaik world, fed from a CSV, recorded in HDF5.

- ``mosaik-csv`` reads ``own_world_data.csv`` (one column per unit, MW) and feeds those units;
  every other load, wind and PV unit is fed from the scenario's own profiles.
- mgcosim's rule-based controller dispatches the microgrids (``own_world.toml``).
- ``mosaik-hdf5`` records every unit, bus and branch, and the grid's scalar totals.

Run: ``python examples/own_world.py --out runs/own_world`` (needs ``pip install -e .[examples]``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mosaik
import pandas as pd

from mgcosim.sim.mosaik_world import add_mgcosim

HERE = Path(__file__).parent
SCENARIO = HERE / "own_world.toml"
DATA = HERE / "own_world_data.csv"
GRID_TOTALS = ("converged", "p_substation_mw", "p_loss_mw", "load_served_mw")


def csv_columns(path: Path) -> list[str]:
    """Unit columns of a mosaik-csv file (first line: model name, second: the header)."""
    return list(pd.read_csv(path, skiprows=1, index_col=0, nrows=0).columns)


def build(out_dir: Path, data: Path = DATA, scenario: Path = SCENARIO) -> mosaik.World:
    """The world: CSV source, mgcosim's grid and controller, an HDF5 sink."""
    sim_config = {
        "CSV": {"python": "mosaik_csv:CSV"},
        "DB": {"python": "mosaik_hdf5:MosaikHdf5"},
    }
    world = mosaik.World(sim_config, time_resolution=1.0, skip_greetings=True)
    columns = csv_columns(data)
    mg = add_mgcosim(world, scenario)
    mg.feed_from_scenario(u for u in mg.profile_units if u not in columns)
    start = mg.scenario.start.strftime("%Y-%m-%d %H:%M:%S")
    feed = world.start("CSV", sim_start=start, datafile=str(data)).Feed()
    for unit in columns:  # each CSV column to its unit's entity: the names are explicit
        world.connect(feed, mg.units[unit], (unit, "p_profile_mw"))
    out_dir.mkdir(parents=True, exist_ok=True)
    db = world.start(
        "DB", step_size=mg.scenario.physical_step_s, duration=mg.scenario.duration_s
    ).Database(filename=str(out_dir / "results.hdf5"))
    for unit in mg.units.values():
        world.connect(unit, db, "p_profile_mw", "p_mw", "soc_mwh")
    for bus in mg.buses.values():
        world.connect(bus, db, "vm_pu")
    for branch in mg.branches.values():
        world.connect(branch, db, "loading_percent", "p_from_mw", "switch_closed")
    world.connect(mg.grid, db, *GRID_TOTALS)
    return world


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/own_world", help="folder for results.hdf5")
    parser.add_argument("--data", default=str(DATA), help="mosaik-csv file, one column per unit")
    args = parser.parse_args(argv)
    from mgcosim.scenarios.loader import load_scenario

    world = build(Path(args.out), Path(args.data))
    world.run(until=load_scenario(SCENARIO).duration_s, print_progress=False)
    print(f"results: {Path(args.out) / 'results.hdf5'}")


if __name__ == "__main__":
    main()
