"""No result depends on the wall clock: the same scenario and seed give byte-identical result
files on an idle machine and while CPU-bound processes keep every core busy.

The case is the main-grid loss with branches 12 and 22 damaged for 2 h (scenarios/blackout.toml)
in a 3 h window from 17:00: eight restoration plans, each a MILP stopped by its gap or by a
node limit (controllers/solve.py), never by a clock. Only ``manifest.json`` (process, host,
heartbeat, wall time) and ``timings.csv`` (solve and step wall times) may differ. Under the
suite's two workers (``-n 2``) the first run shares the machine with the other worker's tests;
the second adds one CPU-bound process per core on top.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import start_cli_run, write_scenario

WALL_CLOCK_FILES = {"manifest.json", "timings.csv"}

# the restoration horizon is capped at 2 periods to keep the test short: the same MILPs,
# node limit and gap as a longer horizon, smaller models
BLACKOUT_3H = """start = 2026-06-01T17:00:00

[restoration]
max_periods = 2

[[faults]]
name = "grid_loss"
kind = "main_grid"
start_h = 1.0
repair_h = 2.0

[[faults]]
name = "f12"
kind = "branch"
branch = 12
start_h = 1.0
repair_h = 2.0

[[faults]]
name = "f22"
kind = "branch"
branch = 22
start_h = 1.0
repair_h = 2.0
"""


@contextmanager
def busy_cores(n: int) -> Iterator[list[subprocess.Popen]]:
    """``n`` CPU-bound processes for the duration of the block, ended by their PIDs."""
    spin = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(spin) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def run_to(path: Path, out: Path) -> None:
    proc = start_cli_run(path, out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]


def result_files(run_dir: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(run_dir.iterdir())
        if p.is_file() and p.name not in WALL_CLOCK_FILES
    }


def test_blackout_results_identical_idle_and_busy(tmp_path: Path):
    path = write_scenario(
        tmp_path,
        BLACKOUT_3H,
        name="blackout_3h",
        duration_h=3,
        seed=20260601,
        controller="rule_based",
    )
    run_to(path, tmp_path / "idle")
    with busy_cores(os.cpu_count() or 2) as load:
        run_to(path, tmp_path / "busy")
        assert all(p.poll() is None for p in load), "the load processes ran throughout"
    idle, busy = result_files(tmp_path / "idle"), result_files(tmp_path / "busy")
    assert "plans.csv" in idle and "bus_vm_pu.csv" in idle
    assert sorted(idle) == sorted(busy)
    differing = [name for name in idle if idle[name] != busy[name]]
    assert differing == []
    plans = idle["plans.csv"].decode().splitlines()
    assert len(plans) == 1 + 8  # header + one restoration plan per 15-min step in the fault
    assert "wall_time_s" not in plans[0]  # wall-clock figures live in timings.csv
    assert (tmp_path / "busy" / "timings.csv").exists()
