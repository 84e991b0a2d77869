"""The runs of a sweep, read from a sweep file or a list of scenario files, each checked by the
scenario loader (:func:`scenarios.loader.load_scenario_text`) before anything runs.

A sweep file (``scenarios/sweep_n2.toml`` is a commented example)::

    name = "my_sweep"              # optional (default: the file name without .toml)
    base = "base_day.toml"         # the scenario every run starts from (relative to this file)
    # scenarios = ["a.toml", "b.toml"]   # or instead: several scenario files

    [set]                          # overrides for every run: any scenario key
    duration_h = 4
    [set.restoration]
    max_periods = 4

    [grid]                         # axes: each list is one axis, the runs are all combinations
    seed = [1, 2, 3]
    controller = ["rule_based", "centralised"]
    "profiles.wind_sigma_pu" = [0.05, 0.10]   # a dotted key (or a [grid.profiles] table)

    [fault_cases]                  # one more axis: branch outages, N-k cases
    branches = [[3, 17], [5, 28]]  # each case: IEEE branches out together
    start_h = 1.0                  # hours after the start, as [[faults]] start_h
    repair_h = 2.0

A fault case becomes the run's ``faults`` list (``[[faults]]`` tables named ``f<branch>``),
replacing the base's faults. Every run is a whole scenario file written into its run
directory (``scenario.toml``), so ``mgcosim run`` reruns it alone.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mgcosim.scenarios.loader import Scenario, ScenarioError, load_scenario_text
from mgcosim.scenarios.read_profiles import BUILTIN

SWEEP_KEYS = ("name", "base", "scenarios", "set", "grid", "fault_cases")
FAULT_CASE_KEYS = ("branches", "start_h", "repair_h")
SCENARIO_FILE = "scenario.toml"  # each run's scenario, in its run directory


@dataclass(frozen=True)
class RunSpec:
    """One run: its name, the scenario file it starts from, its overrides and its TOML text."""

    name: str
    base: Path
    overrides: dict[str, Any]  # dotted key -> value (the axes' values of this run)
    text: str = field(repr=False)  # the whole scenario of the run, as written to scenario.toml


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep: its name, the file it came from (None: scenario files) and its runs."""

    name: str
    path: Path | None
    runs: tuple[RunSpec, ...]
    axes: tuple[str, ...] = ()  # dotted keys of the grid axes (table columns)


# ----------------------------------------------------------------------------- reading


def is_sweep_file(path: Path) -> bool:
    """A TOML file with a ``base``, ``scenarios`` or ``grid`` key (a scenario has none)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return any(key in raw for key in ("base", "scenarios", "grid", "fault_cases"))


def load_sweep(paths: Sequence[str | Path]) -> SweepSpec:
    """One sweep file, or one or more scenario files (a run each); refuses bad input with a
    :class:`ScenarioError` naming the file, the field and the fix."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ScenarioError(None, "<files>", "no file given", "give a sweep file or scenarios")
    sweeps = [p for p in paths if is_sweep_file(p)]
    if sweeps and len(paths) > 1:
        raise ScenarioError(
            sweeps[0],
            "<file>",
            "is a sweep file given together with other files",
            "give one sweep file, or only scenario files",
        )
    if sweeps:
        return read_sweep_file(paths[0])
    runs = [run_spec(p, p.resolve().parent, {}, {}) for p in paths]
    return SweepSpec(paths[0].stem if len(paths) == 1 else "sweep", None, _unique(runs, None))


def read_sweep_file(path: Path) -> SweepSpec:
    """The runs of a sweep file (module docstring)."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(path, "<toml syntax>", str(err), "correct the TOML there") from None
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise ScenarioError(
            path, unknown[0], "is not a sweep key", f"valid keys: {', '.join(SWEEP_KEYS)}"
        )
    here = path.resolve().parent
    bases = _base_files(raw, path, here)
    common = _table(raw.get("set", {}), "set", path)
    axes = grid_axes(raw, path)
    if "grid" in raw and not axes:
        raise ScenarioError(
            path, "grid", "has no axes", "give at least one axis, e.g. seed = [1, 2]"
        )
    if "base" in raw and not axes:
        raise ScenarioError(
            path,
            "grid",
            "is missing: a base without axes is one run",
            "add a [grid] axis or [fault_cases], or run the base with mgcosim run",
        )
    runs = []
    for base in bases:
        for combo in itertools.product(*(values for _, _, values in axes)):
            chosen = {
                key: (section, value) for (key, section, _), value in zip(axes, combo, strict=True)
            }
            runs.append(run_spec(base, here, common, chosen, path))
    name = _text(raw.get("name", path.stem), "name", path)
    return SweepSpec(name, path, _unique(runs, path), tuple(key for key, _, _ in axes))


def _base_files(raw: dict, path: Path, here: Path) -> list[Path]:
    if ("base" in raw) == ("scenarios" in raw):
        raise ScenarioError(
            path,
            "base",
            "base and scenarios are " + ("both given" if "base" in raw else "both missing"),
            'give exactly one: base = "x.toml" or scenarios = ["a.toml", "b.toml"]',
        )
    key = "base" if "base" in raw else "scenarios"
    names = [raw["base"]] if key == "base" else raw["scenarios"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ScenarioError(path, key, f"is {names!r}", "give scenario file paths in quotes")
    files = [here / name for name in names]
    for i, file in enumerate(files):
        if not file.is_file():
            where = key if key == "base" else f"scenarios[{i}]"
            raise ScenarioError(
                path,
                where,
                f"file {file} does not exist",
                f"give a scenario file path relative to {here}",
            )
    return files


def _table(value: Any, where: str, path: Path) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(path, where, f"is {value!r}", f"write it as a [{where}] table")
    return value


def _text(value: Any, where: str, path: Path) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._+-]+", value):
        raise ScenarioError(
            path, where, f"is {value!r}", "give a name of letters, digits, '.', '_', '-'"
        )
    return value


def grid_axes(raw: dict, path: Path) -> list[tuple[str, str, list]]:
    """(dotted key, section, values) of every axis: the [grid] lists, then the fault cases."""
    axes = []

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(value, dotted)
            elif not isinstance(value, list):
                raise ScenarioError(
                    path,
                    f"grid.{dotted}",
                    f"is {value!r}, not a list of values",
                    f"give the values as a list, e.g. {key} = [1, 2], or put one value in [set]",
                )
            elif not value:
                raise ScenarioError(
                    path, f"grid.{dotted}", "is an empty list", "give at least one value"
                )
            else:
                axes.append((dotted, "grid", value))

    walk(_table(raw.get("grid", {}), "grid", path), "")
    if "fault_cases" in raw:
        axes.append(("faults", "fault_cases", fault_case_faults(raw["fault_cases"], path)))
    return axes


def fault_case_faults(value: Any, path: Path) -> list[list[dict]]:
    """[fault_cases] as the ``faults`` list of each case (branch faults named ``f<branch>``)."""
    table = _table(value, "fault_cases", path)
    unknown = sorted(set(table) - set(FAULT_CASE_KEYS))
    if unknown:
        raise ScenarioError(
            path,
            f"fault_cases.{unknown[0]}",
            "is not a known key",
            f"valid keys: {', '.join(FAULT_CASE_KEYS)}",
        )
    cases = table.get("branches")
    good = isinstance(cases, list) and all(
        isinstance(c, list) and c and all(isinstance(b, int) for b in c) for c in cases
    )
    if not good or not cases:
        raise ScenarioError(
            path,
            "fault_cases.branches",
            f"is {cases!r}",
            "give a non-empty list of cases, each a list of IEEE branches: [[3, 17], [5, 28]]",
        )
    for key in ("start_h", "repair_h"):
        if key not in table:
            raise ScenarioError(
                path, f"fault_cases.{key}", "is missing", f"add {key} = <hours>, as in [[faults]]"
            )
    timing = {"start_h": table["start_h"], "repair_h": table["repair_h"]}
    return [[{"name": f"f{b}", "kind": "branch", "branch": b} | timing for b in c] for c in cases]


# ----------------------------------------------------------------------------- one run


def run_spec(
    base: Path,
    here: Path,
    common: dict,
    chosen: dict[str, tuple[str, Any]],
    sweep_path: Path | None = None,
) -> RunSpec:
    """The run of ``base`` with the [set] values and one value per axis, checked by the loader
    (an override's mistake is named in the sweep file, a base's in the base)."""
    try:
        raw = tomllib.loads(base.read_text())
    except FileNotFoundError:
        raise ScenarioError(base, "<file>", "does not exist", "give an existing scenario") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(base, "<toml syntax>", str(err), "correct the TOML there") from None
    _absolute_source(raw, base.resolve().parent)
    overrides = {}
    for key, value in _flatten(common).items():
        _put(raw, key, value)
        overrides[key] = ("set", value)
    for key, (section, value) in chosen.items():
        _put(raw, key, value)
        overrides[key] = (section, value)
    if any(key.startswith("profiles.source") for key in overrides):
        _absolute_source(raw, here)
    name = _run_name(raw.get("name", base.stem), chosen)
    raw["name"] = name
    text = dumps_toml(raw)
    try:
        scenario = load_scenario_text(text, base)
    except ScenarioError as err:
        raise _named_in_sweep(err, overrides, sweep_path, name) from None
    _check_controller(scenario)
    return RunSpec(name, base, {key: value for key, (_, value) in chosen.items()}, text)


def _check_controller(scenario: Scenario) -> None:
    from mgcosim.sim.controller_sim import check_controller  # pandapower: once the files are good

    check_controller(scenario)


def _named_in_sweep(
    err: ScenarioError, overrides: dict, sweep_path: Path | None, run: str
) -> ScenarioError:
    """The loader's error, moved to the sweep file's field when an override caused it."""
    if sweep_path is None:
        return err
    for key, (section, _) in overrides.items():
        if err.field == key or err.field.startswith((f"{key}.", f"{key}[")):
            where = f"{section}.{key}"
            if section == "fault_cases":
                timing = err.field.rsplit(".", 1)[-1]
                where = f"fault_cases.{timing if timing in FAULT_CASE_KEYS else 'branches'}"
            return ScenarioError(sweep_path, where, f"{err.message} (run {run})", err.fix)
    return err


def _absolute_source(raw: dict, folder: Path) -> None:
    """A relative profile file, made absolute (the run's scenario lives elsewhere)."""
    table = raw.get("profiles")
    source = table.get("source") if isinstance(table, dict) else None
    if isinstance(source, str) and source != BUILTIN:
        if not Path(source).expanduser().is_absolute():
            table["source"] = str((folder / source).resolve())


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out |= _flatten(value, dotted)
        else:
            out[dotted] = value
    return out


def _put(raw: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    table = raw
    for key in parents:
        if not isinstance(table.get(key), dict):
            table[key] = {}
        table = table[key]
    table[last] = value


def label(value: Any) -> str:
    """A short, file-name-safe text for an axis value (a fault list: its branches)."""
    if isinstance(value, list):
        return "+".join(label(v) for v in value)
    if isinstance(value, dict):
        if value.get("kind", "branch") == "branch" and "branch" in value:
            return f"b{value['branch']}"
        return label(value.get("name", "-".join(str(v) for v in value.values())))
    return re.sub(r"[^A-Za-z0-9._+-]", "-", str(value))


def _run_name(base_name: str, chosen: dict[str, tuple[str, Any]]) -> str:
    parts = [label(base_name)]
    parts += [f"{key.split('.')[-1]}-{label(value)}" for key, (_, value) in chosen.items()]
    return "__".join(parts)


def _unique(runs: list[RunSpec], path: Path | None) -> tuple[RunSpec, ...]:
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            raise ScenarioError(
                path or run.base,
                "name",
                f"two runs are named {run.name!r} ({seen[run.name]} and {run.base})",
                "give each scenario its own name, or each axis distinct values",
            )
        seen[run.name] = run.base
    return tuple(runs)


# ----------------------------------------------------------------------------- TOML out


def dumps_toml(raw: dict) -> str:
    """TOML text of a scenario table (``tomllib.loads`` gives ``raw`` back): one line per
    top-level key, nested tables inline."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in raw.items())


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


# ----------------------------------------------------------------------------- fault draws


def sectional_branches(data) -> list[int]:
    """The IEEE branches in service in the default topology (not ties): the N-1 study's
    cases (:func:`sim.restore_n1.run_n1_sweep`)."""
    branches = data.branches
    return sorted(int(b) for b in branches.branch_ieee[~branches.is_tie.astype(bool)])


def draw_fault_cases(branches: Sequence[int], n_cases: int, k: int, seed: int) -> list[list[int]]:
    """``n_cases`` distinct sets of ``k`` branches, drawn uniformly with ``seed``
    (numpy's default generator), each sorted, in the order drawn."""
    rng = np.random.default_rng(seed)
    cases: list[list[int]] = []
    while len(cases) < n_cases:
        case = sorted(int(b) for b in rng.choice(list(branches), size=k, replace=False))
        if case not in cases:
            cases.append(case)
    return cases
