"""``mgcosim sweep``: many co-simulation runs in parallel on Dask distributed.

The runs (:mod:`sim.sweep_spec`: a sweep file with a base scenario and a grid of overrides,
or several scenario files) run as tasks on a Dask cluster: a local one by default
(``--workers N`` processes of one thread each) or a running scheduler (``--scheduler
ADDRESS``). Each run is the normal run path (:func:`sim.world.run_scenario`, the same files
as ``mgcosim run``) into its own directory ``OUT/<run name>``, from its ``scenario.toml``.
A run's results depend on its scenario alone (seed included), not on the worker or order.

The summary table ``OUT/sweep.parquet`` and ``OUT/sweep.csv`` has one row per run: name,
status (``finished`` or ``failed``, with the error), the axis values and all overrides, the
key figures of its ``summary.json``, how often the sweep ran it (``attempts``) and
``wall_clock_s`` (machine dependent: never compare it). The table is rewritten after every
run, so an interrupted sweep leaves the runs done so far in it.

Resume: the same command on the same ``OUT`` skips every run whose manifest says it finished
and whose ``scenario.toml`` is unchanged, and runs the others again (failed, interrupted,
killed). A run that fails is recorded and the others go on.

Needs the ``sweep`` extra: ``pip install 'mgcosim[sweep]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import sys
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mgcosim.scenarios.loader import DEFAULT_SEED
from mgcosim.sim.argtypes import positive_int
from mgcosim.sim.schema import SUMMARY_KEY_FIGURES
from mgcosim.sim.sweep_spec import SCENARIO_FILE, RunSpec, SweepSpec, load_sweep

RECORD_FILE = "sweep_run.json"  # per run directory: attempts, wall clock, error, worker
TABLE_NAME = "sweep"
FINISHED, FAILED = "finished", "failed"
EXIT_RUNS_FAILED = 3
EXIT_INTERRUPTED = 130
CONNECT_TIMEOUT_S = 10
# the key figures of summary.json in the table, by name or by prefix
KEY_PREFIXES = ("cost_", "energy_shed_tier", "ac_", "plan_ac_", "soc_plan_vs_real")
SWEEP_EXIT_CODES = f"""exit codes:
  0    every run finished (skipped ones included)
  2    bad input, refused before any run: a sweep or scenario file (the file, the
       field and the fix), --out, --scheduler, or dask not installed
  {EXIT_RUNS_FAILED}    the sweep ended but some runs failed (status and error in the table)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM): finished runs are kept; run the same
       command again to resume"""


class SweepError(ValueError):
    """A sweep that cannot start: the option or path, what is wrong, the fix (one line)."""


# ----------------------------------------------------------------------------- the study


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    client,
    progress: Callable[[int, int, dict], None] | None = None,
) -> pd.DataFrame:
    """Run the sweep's unfinished runs on the Dask ``client``; returns the summary table
    (also written to ``out_dir/sweep.parquet`` and ``sweep.csv``), one row per run in the
    sweep's order. ``progress(k, n, row)`` is called as each run is done or skipped."""
    from distributed import as_completed

    out_dir = Path(out_dir)
    check_out_dir(spec, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    done = 0

    def record(row: dict) -> None:
        nonlocal done
        rows[row["run"]] = row
        done += 1
        write_table(out_dir, [rows[r.name] for r in spec.runs if r.name in rows])
        if progress is not None:
            progress(done, len(spec.runs), row)

    futures = {}
    for run in spec.runs:
        run_dir = out_dir / run.name
        if is_finished(run, run_dir):
            record(run_row(run, run_dir, "skipped"))
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / SCENARIO_FILE).write_text(run.text)
        key = f"mgcosim-{run.name}-{uuid.uuid4().hex[:8]}"  # unique on a shared scheduler
        future = client.submit(execute_run, str(run_dir), key=key, pure=False)
        futures[future] = run
    try:
        for future in as_completed(futures):
            run = futures[future]
            try:
                future.result()
            except Exception as err:  # the worker died, or the task could not run there
                note_failure(out_dir / run.name, f"{type(err).__name__}: {err}")
            record(run_row(run, out_dir / run.name, "ran"))
    finally:
        client.cancel(list(futures))
    return table(rows[r.name] for r in spec.runs)


def is_finished(run: RunSpec, run_dir: Path) -> bool:
    """A finished run of this very scenario (its manifest, and the same scenario.toml)."""
    from mgcosim.sim.run_state import FINISHED as STATE_FINISHED
    from mgcosim.sim.run_state import run_state

    scenario_file = run_dir / SCENARIO_FILE
    same = scenario_file.is_file() and scenario_file.read_text() == run.text
    return same and run_state(run_dir).state == STATE_FINISHED


def check_out_dir(spec: SweepSpec, out_dir: Path) -> None:
    """Refuse ``out_dir`` (a file, under a file) or a run directory in it that is a file or
    holds a run still writing; nothing is touched."""
    from mgcosim.sim.run_state import RUNNING, RunDirError, refuse_under_file, run_state

    try:
        refuse_under_file(out_dir)
    except RunDirError as err:
        raise SweepError(str(err)) from None
    for run in spec.runs:
        run_dir = out_dir / run.name
        if run_dir.exists() and not run_dir.is_dir():
            raise SweepError(f"{run_dir} is a file; remove it or give another --out")
        state = run_state(run_dir)
        if run_dir.is_dir() and state.state == RUNNING:
            raise SweepError(
                f"{run_dir}: a run is writing there ({state.detail}); wait for it to end, "
                "or give another --out"
            )


# ----------------------------------------------------------------------------- one run


def execute_run(run_dir: str) -> dict:
    """On a worker: the run of ``run_dir/scenario.toml`` by the normal run path; an error is
    recorded (manifest status failed, ``sweep_run.json``), never raised. Returns the record."""
    from mgcosim.scenarios.loader import load_scenario
    from mgcosim.sim.run_state import mark_manifest
    from mgcosim.sim.world import quiet_mosaik_logs, run_scenario

    path = Path(run_dir)
    record = read_record(path)
    record.update(
        attempts=record.get("attempts", 0) + 1,
        error="",
        worker=socket.gethostname(),
        wall_clock_s=None,
    )
    write_record(path, record)  # an attempt killed on the way counts too
    start = time.perf_counter()
    try:
        quiet_mosaik_logs()
        run_scenario(load_scenario(path / SCENARIO_FILE), path, progress=False)
    except Exception as err:
        mark_manifest(path, "failed", error=repr(err))
        record["error"] = f"{type(err).__name__}: {err}"
    record["wall_clock_s"] = round(time.perf_counter() - start, 3)
    write_record(path, record)
    return record


def read_record(run_dir: Path) -> dict:
    return _json(run_dir / RECORD_FILE)


def write_record(run_dir: Path, record: dict) -> None:
    from mgcosim.sim.results import write_json

    write_json(run_dir / RECORD_FILE, record)


def note_failure(run_dir: Path, error: str) -> None:
    """A task that failed outside :func:`execute_run` (its worker died): say so."""
    record = read_record(run_dir)
    record["error"] = error
    write_record(run_dir, record)


def run_row(run: RunSpec, run_dir: Path, action: str) -> dict:
    """The table row of a run from its files: status, error, axes, key figures, record."""
    from mgcosim.sim.run_state import FINISHED as STATE_FINISHED
    from mgcosim.sim.run_state import run_state

    state = run_state(run_dir)
    record = read_record(run_dir)
    manifest = _json(run_dir / "manifest.json")
    finished = state.state == STATE_FINISHED
    error = "" if finished else record.get("error") or manifest.get("error") or state.detail
    row = {
        "run": run.name,
        "status": FINISHED if finished else FAILED,
        "error": error,
        "manifest_status": manifest.get("status", ""),
        **{key: _cell(value) for key, value in run.overrides.items()},
        "overrides": json.dumps(run.overrides, default=str, sort_keys=True),
        "seed": scenario_seed(run),
    }
    summary = _json(run_dir / "summary.json") if finished else {}
    row |= {key: summary.get(key, math.nan) for key in SUMMARY_KEY_FIGURES}
    row |= {k: v for k, v in summary.items() if k.startswith(KEY_PREFIXES)}
    return row | {
        "attempts": record.get("attempts", 0),
        "action": action,
        "run_dir": run.name,
        "wall_clock_s": record.get("wall_clock_s") or math.nan,
    }


def scenario_seed(run: RunSpec) -> int:
    """The seed of the run's scenario (the loader's default when it gives none)."""
    return int(tomllib.loads(run.text).get("seed", DEFAULT_SEED))


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _cell(value: object) -> object:
    """An axis value as a table cell: scalars as they are, lists and tables as text."""
    if isinstance(value, bool | int | float | str):
        return value
    from mgcosim.sim.sweep_spec import label

    return label(value)


# ----------------------------------------------------------------------------- the table


def table(rows) -> pd.DataFrame:
    """The rows as a DataFrame; a column of mixed types becomes text."""
    df = pd.DataFrame(list(rows))
    for column in df.columns:
        kinds = {type(v) for v in df[column] if v is not None and v == v}
        if kinds == {int}:  # whole numbers stay whole where a failed run has none
            df[column] = df[column].astype("Int64")
        elif len(kinds) > 1 and not kinds <= {int, float}:
            df[column] = df[column].map(lambda v: "" if v is None else str(v))
    return df


def write_table(out_dir: Path, rows: list[dict]) -> pd.DataFrame:
    """``sweep.parquet`` and ``sweep.csv`` (each written whole, then renamed)."""
    df = table(rows)
    for suffix, write in ((".parquet", df.to_parquet), (".csv", df.to_csv)):
        path = out_dir / f"{TABLE_NAME}{suffix}"
        tmp = path.with_name(f".{path.name}.tmp")
        write(tmp, index=False)
        os.replace(tmp, path)
    return df


# ----------------------------------------------------------------------------- the cluster


SCHEDULER_ADDRESS = re.compile(r"^((tcp|tls|ws|wss|ucx)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def connect(workers: int, scheduler: str | None):
    """A Dask client: of a running scheduler, or of a new local cluster of ``workers``
    processes with one thread each. Refuses a bad or silent address (:class:`SweepError`)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError(
            "mgcosim sweep needs Dask distributed, which is not installed; "
            "install it with pip install 'mgcosim[sweep]'"
        ) from None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port, never a clash
            silence_logs=50,  # CRITICAL: no worker tracebacks at shutdown
        )
        return Client(cluster)
    if not SCHEDULER_ADDRESS.match(scheduler):
        raise SweepError(
            f"--scheduler {scheduler!r} is not a scheduler address; give tcp://HOST:PORT "
            "(the address `dask scheduler` prints), or leave it out for a local cluster"
        )
    try:
        refuse_closed_port(scheduler)
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        raise SweepError(
            f"--scheduler {scheduler}: no Dask scheduler answers there within "
            f"{CONNECT_TIMEOUT_S} s ({type(err).__name__}); check the address, start one with "
            "`dask scheduler`, or leave --scheduler out for a local cluster"
        ) from None


def refuse_closed_port(address: str) -> None:
    """Raise ``ConnectionRefusedError`` at once when nothing listens at a TCP address
    (``tcp://HOST:PORT`` or ``HOST:PORT``), where Dask's client would retry until its
    timeout; addresses of the other protocols are left to the client."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        return
    host, port = rest.rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
        pass


def close(client) -> None:
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


# ----------------------------------------------------------------------------- CLI


def print_progress(k: int, n: int, row: dict) -> None:
    width = len(str(n))
    if row["action"] == "skipped":
        what = "skipped (finished before)"
    elif row["status"] == FINISHED:
        what = f"finished in {row['wall_clock_s']:.1f} s"
    else:
        what = f"FAILED: {row['error']}"
    print(f"{k:>{width}}/{n} {row['run']}  {what}", flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def cmd_sweep(args: argparse.Namespace) -> int:
    spec = load_sweep(args.files)  # every run's scenario checked before anything starts
    out_dir = Path(args.out or Path("runs") / spec.name)
    check_out_dir(spec, out_dir)
    client = connect(args.workers, args.scheduler)
    plural = "es" * (args.workers > 1)
    where = args.scheduler or f"a local cluster of {args.workers} worker process{plural}"
    n = len(spec.runs)
    print(f"Sweep {spec.name!r}: {n} run{'s' * (n > 1)} on {where} -> {out_dir}", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        df = run_sweep(spec, out_dir, client, print_progress)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted: finished runs kept in {out_dir}; run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        close(client)
    failed = df[df.status != FINISHED]
    print(
        f"{len(df) - len(failed)} of {len(df)} runs finished"
        f"{f', {len(failed)} failed' if len(failed) else ''}; table: "
        f"{out_dir / (TABLE_NAME + '.parquet')} and .csv"
    )
    return EXIT_RUNS_FAILED if len(failed) else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mgcosim sweep`` on the CLI's subparsers."""
    p = sub.add_parser(
        "sweep",
        help="run many scenarios in parallel on Dask (a grid of overrides, or several files)",
        description="Run a sweep file (a base scenario and a grid of overrides, see\n"
        "scenarios/sweep_n2.toml) or several scenario files in parallel on Dask\n"
        "distributed. Each run writes its own run directory under --out; OUT/sweep.parquet\n"
        "and OUT/sweep.csv hold a row per run. Started again on the same --out, finished\n"
        "runs are skipped.",
        epilog=SWEEP_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", help="one sweep file, or one or more scenario files")
    p.add_argument("--out", help="output directory (default: runs/<sweep name>)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="worker processes of the local cluster, one thread each (default 2)",
    )
    where.add_argument(
        "--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786"
    )
    p.set_defaults(func=cmd_sweep)
