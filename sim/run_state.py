"""What became of a run, from its ``manifest.json``: finished, interrupted, failed, running,
or stopped without finishing (the manifest still says running but the process that wrote it
is gone: killed by SIGKILL, out of memory, the machine went down).

The writer (:class:`sim.results.RunWriter`) records ``pid``, ``host``, ``started_utc`` and a
``heartbeat`` (UTC, rewritten at every step). A run on another host cannot be checked from
here and counts as running. No dependency beyond the standard library, so that
:mod:`sim.report` stays light.

The CLI's checks of run directories live here too: :func:`check_run_files` (a directory
to report on) and :func:`check_out_dir`, :func:`prepare_out_dir` (a directory to run into).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mgcosim.sim.schema import ESSENTIAL_FILES, FILES, OTHER_RUN_FILES, expected_files

STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_FAILED_FLOWS = "completed_with_failed_power_flows"
STATUS_INTERRUPTED = "interrupted"
STATUS_FAILED = "failed"


# states of run_state
FINISHED = "finished"
INTERRUPTED = "interrupted"
FAILED = "failed"
RUNNING = "running"
STOPPED = "stopped without finishing"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunState:
    """What became of a run: ``state`` (one of the constants above) and a sentence."""

    state: str
    detail: str


def run_state(run_dir: Path) -> RunState:
    """Classify a run directory by its ``manifest.json`` (see :func:`manifest_state`)."""
    try:
        manifest = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return RunState(UNKNOWN, "no readable manifest.json")
    return manifest_state(manifest)


def manifest_state(manifest: dict) -> RunState:
    """finished (completed, with or without failed power flows), interrupted (Ctrl-C),
    failed (an error), running (its process is alive, or lives on another host and cannot
    be checked) or stopped without finishing (status still ``running`` but its process on
    this host is gone: killed, or the machine went down)."""
    status = str(manifest.get("status", ""))
    done = f"{manifest.get('steps_done', '?')} of {manifest.get('steps_expected', '?')} steps"
    if status in (STATUS_COMPLETED, STATUS_FAILED_FLOWS):
        failed = manifest.get("n_not_converged") or 0
        flows = f", {failed} power flows not converged" if failed else ""
        return RunState(FINISHED, f"finished ({done}{flows})")
    if status in (STATUS_INTERRUPTED, STATUS_FAILED):
        return RunState(status, f"{status} after {done}")
    if status != STATUS_RUNNING:
        return RunState(UNKNOWN, f"status {status!r} after {done}")
    return _running_state(manifest, done)


def _running_state(manifest: dict, done: str) -> RunState:
    pid, host = manifest.get("pid"), manifest.get("host")
    beat = f"last heartbeat {manifest.get('heartbeat')} UTC"
    if not isinstance(pid, int) or not host:
        return RunState(RUNNING, f"running or stopped without notice after {done} (no pid)")
    if host != socket.gethostname():
        return RunState(RUNNING, f"running on host {host} (not checked from here) after {done}")
    if process_alive(pid, manifest.get("started_utc")):
        return RunState(RUNNING, f"running (process {pid}) after {done}, {beat}")
    return RunState(STOPPED, f"{STOPPED} after {done}: process {pid} on {host} is gone, {beat}")


def process_alive(pid: int, started_utc: str | None = None) -> bool:
    """Whether ``pid`` runs on this host and may be the run's writer: not a zombie and,
    where ``/proc`` tells, not a process started after the run (a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, start_epoch_s = stat
    if state == "Z":
        return False
    if start_epoch_s is None or not started_utc:
        return True
    started = datetime.fromisoformat(started_utc).timestamp()
    return start_epoch_s <= started + 2.0  # 1 s ISO rounding + clock-tick rounding


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time as epoch seconds) of a Linux process, None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, ValueError, StopIteration):
        return None
    start_ticks = float(fields[19])  # field 22 of stat, counted after "pid (comm)"
    return fields[0], btime + start_ticks / os.sysconf("SC_CLK_TCK")


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the manifest's clock)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunDirError(ValueError):
    """A path that cannot be a run directory (one line: the path, what is wrong, the fix)."""


def check_run_dir(path: Path, what: str = "run directory") -> None:
    """Refuse a missing path, or one that is a file, as a run directory to read."""
    if not path.exists():
        raise RunDirError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise RunDirError(f"{what} {path} is a file, not a directory")


def missing_files(run_dir: Path) -> list[str]:
    """The files a run directory lacks: every declared non-optional file, except those
    written at the end (summary.json, schema.json, results.parquet) while a run is
    unfinished (interrupted, failed, killed, still running)."""
    finished = run_state(run_dir).state == FINISHED
    return [name for name in expected_files(finished) if not (run_dir / name).is_file()]


def check_run_files(run_dir: Path, what: str = "run directory") -> list[str]:
    """The missing files of a run directory to report on; refuses one without the
    essential files (nothing to report: not a run, or stopped before its first step)."""
    check_run_dir(run_dir, what)
    missing = sorted(missing_files(run_dir), key=lambda name: name not in ESSENTIAL_FILES)
    if any(name in missing for name in ESSENTIAL_FILES):
        raise RunDirError(
            f"{what} {run_dir} holds no run (or its run stopped before the first step): "
            f"missing {', '.join(missing)}"
        )
    return missing


def run_files_in(directory: Path) -> list[str]:
    """The files of a run (declared ones, the report, the MESS placement) in a directory."""
    names = [f.file for f in FILES] + list(OTHER_RUN_FILES)
    return [name for name in names if (directory / name).exists()]


def refuse_under_file(out: Path) -> None:
    """Raise :class:`RunDirError` when ``--out`` ``out`` is a file or lies under one."""
    for path in [out, *out.parents]:
        if path.exists():
            if not path.is_dir():
                where = "is a file" if path == out else f"lies under the file {path}"
                raise RunDirError(f"--out {out} {where}; give a directory")
            return


def check_out_dir(out: Path, overwrite: bool) -> list[str]:
    """Refuse ``out`` as a run directory with a one-line :class:`RunDirError`, without
    touching anything: a file, a path under a file, a run directory (unless ``overwrite``)
    or a run still writing there. Returns the old run's files (to remove)."""
    refuse_under_file(out)
    found = run_files_in(out) if out.is_dir() else []
    if found:
        state = run_state(out)
        if state.state == RUNNING:
            raise RunDirError(f"--out {out}: a run is writing there ({state.detail})")
        if not overwrite:
            raise RunDirError(
                f"--out {out} holds a run already ({', '.join(found[:3])}"
                f"{', ...' if len(found) > 3 else ''}); add --overwrite to replace it, "
                "or give another --out"
            )
    return found


def prepare_out_dir(out: Path, old_files: list[str]) -> None:
    """Remove the old run's files (:func:`check_out_dir`), create ``out`` and check that it
    takes a file; an unwritable place is a one-line :class:`RunDirError`."""
    try:
        for name in old_files:
            (out / name).unlink()
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".mgcosim-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"--out {out}: cannot write there ({err.strerror or err})") from err


def mark_manifest(out_dir: Path, status: str, **extra: object) -> dict | None:
    """Set the status of this process's run if still marked running (None: no manifest)."""
    from mgcosim.sim.results import write_json

    path = out_dir / "manifest.json"
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("status") == "running" and manifest.get("pid", os.getpid()) == os.getpid():
        manifest.update(status=status, **extra)
        write_json(path, manifest)
    return manifest
