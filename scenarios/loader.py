"""Validated TOML scenario files: everything a run needs, checked before the run starts.

A scenario file (see ``scenarios/base_day.toml`` for a commented example) looks like::

    name = "base_day"               # run name (default: the file name without .toml)
    network = "ieee33"              # network; only "ieee33" for now
    start = 2026-06-01T00:00:00     # wall-clock start (TOML local date-time)
    duration_h = 24                 # simulated time, hours
    physical_step_min = 15          # power-flow step, minutes (divides the controller step)
    controller_step_min = 60        # controller re-planning step, minutes (divides the duration)
    horizon_h = 24                  # look-ahead of each plan, hours (k x controller step)
    seed = 20260601                 # seed of all random draws (integer >= 0)
    controller = "rule_based"       # "rule_based", "centralised" or "admm"
    microgrid_model = "lumped"      # co-simulated microgrids: "lumped" or "internal"
    max_steps = 35040               # refuse runs of more physical steps (raise to allow)

    [profiles]
    source = "builtin"              # or a CSV / Parquet path relative to the scenario file
    repeat = "daily"                # hour tables: "daily" or "none" (default: see below)
    wind_sigma_pu = 0.10            # std of the wind forecast error, per unit of rating
    wind_phi_per_h = 0.85           # 1-hour autocorrelation of that error, in [0, 1)
    load_sigma_pu = 0.03            # load forecast error, per unit of the forecast
    load_phi_per_h = 0.90
    pv_sigma_pu = 0.08              # PV forecast error, per unit of the forecast
    pv_phi_per_h = 0.80
    wind_samples = 100              # sampled wind scenarios before reduction
    wind_scenarios = 10             # scenarios kept after reduction (<= wind_samples)

    [dso]                           # overrides of networks/data/dso.csv columns
    v_min_pu = 0.92

    [microgrids.MG1]                # overrides of networks/data/microgrids.csv, by microgrid
    wind_p_rated_mw = 0.9

    [pv.PV_b18]                     # overrides of networks/data/pv.csv, by PV unit
    p_rated_mw = 0.4

    [[faults]]                      # any number of outages
    name = "f1"                     # optional (default "fault_<n>")
    kind = "branch"                 # "branch" (default) or "main_grid"
    branch = 12                     # IEEE branch 1..37, or instead: buses = [12, 13]
    start_h = 12.0                  # hours after the scenario start, in [0, duration)
    repair_h = 2.0                  # hours until repaired, > 0

    [restoration]                   # planner while faults are in force
    method = "centralised"          # or "admm"; also step_min, margin_h, max_periods, ...

    [admm]                          # the bilevel ADMM (controller = "admm")
    agents = "in_process"           # or "mosaik": the DSO and each microgrid as mosaik entities
    reference = true                # also solve the centralised model (false: required by "mosaik")

    [communication]                 # message faults on the ADMM's DSO <-> microgrid links
    loss_prob = 0.0                 # each message, each direction, in [0, 1]
    delay_s = 0.0                   # one-way delay (s), plus U[0, 1) x jitter_s
    jitter_s = 0.0
    deadline_s = 1.0                # a reply whose round trip exceeds it is late
    finish_attempts = 10            # finish requests before the rule-based fallback
    missing_reply = "hold"          # or "last_value": what an iteration does without a reply
    seed = 20260601                 # default: the scenario's seed
    [communication.microgrids.MG2]  # one link's loss_prob / delay_s / jitter_s
    loss_prob = 0.5

    [mess]                          # mobile storage for the event (networks/data/mess.csv)
    placement = "given"             # "none", "given", "robust" or "deterministic" (computed)
    buses = [23]                    # with "given": one unit at each IEEE bus

Every key is optional except a fault's ``start_h`` and ``repair_h``; defaults are the values
above (without overrides or faults). Durations may be fractional but must come to whole
seconds; the physical step is at least :data:`MIN_PHYSICAL_STEP_S` (1 min) and a run at
most ``max_steps`` physical steps (default :data:`MAX_STEPS_DEFAULT`, one year at 15 min).
A profile file (format: :mod:`scenarios.profiles`) has a time column, ``hour`` (hours after
midnight of the start day) or ``time`` (date-times), and any of ``load_pu``, ``wind_pu``,
``pv_pu`` (missing ones are interpolated from the built-in daily table), plus optional unit
columns ``<unit>_pu`` or ``<unit>_mw`` (``MG1_wind_pu``, ``MG1_load_mw``, ``PV_b18_pu``,
``load_b5_pu`` ...) and actual series ``<unit>_actual_pu`` / ``_mw``. A daily shape (hours in
[0, 24)) repeats only with ``repeat = "daily"`` or when the run lies within that day; any
other table must cover the run. Any mistake raises :class:`ScenarioError` naming the file (the
scenario, or the built-in CSV a bad value comes from), the field and the fix; a profile
file's own name and line are in the message.

Without a ``[communication]`` table the ADMM's messages all arrive at once (a perfect
network); its semantics: :mod:`controllers.comms`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgcosim.controllers.comms import MISSING_REPLY, CommunicationSettings, LinkSettings
from mgcosim.networks.microgrid_internal import (
    MicrogridDataError,
    MicrogridNetwork,
    load_microgrid_networks,
    with_feeder_head_limits,
)
from mgcosim.networks.params import (
    DATA_DIR,
    NetworkData,
    ParameterError,
    data_file,
    load_network_data,
    with_overrides,
)
from mgcosim.scenarios import profiles
from mgcosim.scenarios.profiles import ProfileSettings

CONTROLLERS = ("rule_based", "centralised", "admm")
MICROGRID_MODELS = ("lumped", "internal")
# network name -> data folder; the feeders with 12 and 48 microgrids: networks/scaled.py
NETWORKS = {
    "ieee33": DATA_DIR,
    "ieee33_mg12": DATA_DIR / "ieee33_mg12",
    "ieee33_mg48": DATA_DIR / "ieee33_mg48",
}
FAULT_KINDS = ("branch", "main_grid")
BUILTIN = "builtin"
TOP_KEYS = (
    "name",
    "network",
    "start",
    "duration_h",
    "physical_step_min",
    "controller_step_min",
    "horizon_h",
    "seed",
    "controller",
    "profiles",
    "dso",
    "microgrids",
    "pv",
    "faults",
    "restoration",
    "mess",
    "microgrid_model",
    "max_steps",
    "admm",
    "communication",
)
ADMM_AGENTS = ("in_process", "mosaik")
RESTORATION_METHODS = ("centralised", "admm")
MESS_PLACEMENTS = ("none", "given", "robust", "deterministic")
FAULT_KEYS = ("name", "kind", "branch", "buses", "start_h", "repair_h")
DEFAULT_START = datetime.datetime(2026, 6, 1)
DEFAULT_SEED = 20260601
_STEP_CANDIDATES_MIN = (1, 5, 10, 15, 20, 30, 60)
# The grid is a quasi-static AC power flow (no dynamics below minutes), the profiles are
# hourly tables and the controllers re-plan hourly: shorter steps add run time, not physics.
MIN_PHYSICAL_STEP_S = 60
# One year at the default 15 min step (8,760 hourly controller steps). A run writes about
# RESULT_KB_PER_STEP of results per physical step (measured on the base day: 440 kB for 96
# steps), so the default limit is ~160 MB; 400,000 steps would be ~1.8 GB and days of run.
MAX_STEPS_DEFAULT = 35_040
RESULT_KB_PER_STEP = 4.6
# When a parameter check names a field the scenario did not override, the partner it was
# compared with may be the one that was: name that instead.
_PARTNERS = {
    "mt_p_min_mw": ("mt_p_max_mw",),
    "ess_e_min_mwh": ("ess_e_max_mwh", "ess_e_init_mwh"),
    "ess_e_init_mwh": ("ess_e_min_mwh", "ess_e_max_mwh"),
    "v_min_pu": ("v_max_pu",),
}


class ScenarioError(ValueError):
    """A scenario file that cannot be run: ``path``, ``field`` (dotted), ``message``, ``fix``."""

    def __init__(self, path: Path | None, field: str, message: str, fix: str) -> None:
        shown = path if path is not None else "<string>"
        super().__init__(f"{shown}: field '{field}': {message}. Fix: {fix}")
        self.path = path
        self.field = field
        self.message = message
        self.fix = fix


@dataclass(frozen=True)
class FaultEvent:
    """An outage: a branch (IEEE number) or the main grid, from ``start_s`` for ``repair_s``."""

    name: str
    kind: str
    branch_ieee: int | None
    start_s: int
    repair_s: int


@dataclass(frozen=True)
class RestorationSettings:
    """Restoration mode: its planner, step, horizon margin after the repair, solve limits."""

    method: str = "centralised"  # or "admm" (two-layer sub-network ADMM, centralised fallback)
    step_min: float | None = None  # None: the physical step
    margin_h: float = 1.0
    max_periods: int = 16
    mip_rel_gap: float = 0.01  # a plan is optimal within this relative gap
    mip_node_limit: int = 100  # else the incumbent after this many nodes (never a clock)


@dataclass(frozen=True)
class MessSettings:
    """Mobile storage (seed 002) for the scenario's event: how its placement is obtained.

    ``given``: one unit at each of ``buses`` (placed on loading, ``data.mess``);
    ``robust`` / ``deterministic``: computed by :mod:`sim.mess` before the run starts, from
    the scenario's first fault time (two-stage robust C&CG, or the forecast PV only).
    Units, ratings and costs come from ``networks/data/mess.csv``.
    """

    placement: str = "none"
    buses: tuple[int, ...] = ()


@dataclass(frozen=True)
class ADMMOptions:
    """How the bilevel ADMM runs: its agents in the controller's object (``in_process``) or
    as mosaik entities, one per microgrid (``mosaik``), and whether the centralised model is
    solved as a reference (it needs every microgrid's parameters in the DSO's process)."""

    agents: str = "in_process"
    reference: bool = True


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario: timing, network data with overrides, profiles and faults."""

    path: Path | None
    name: str
    network: str
    start: datetime.datetime
    duration_s: int
    physical_step_s: int
    controller_step_s: int
    horizon_s: int
    seed: int
    controller: str
    data: NetworkData
    profiles: ProfileSettings
    faults: tuple[FaultEvent, ...]
    raw: dict
    restoration: RestorationSettings = RestorationSettings()
    mess: MessSettings = MessSettings()
    microgrid_model: str = "lumped"  # "internal": the grid runs the microgrids' own networks
    admm: ADMMOptions = ADMMOptions()
    communication: CommunicationSettings | None = None  # None: a perfect network

    @property
    def n_steps(self) -> int:
        """Number of physical (power-flow) steps."""
        return self.duration_s // self.physical_step_s

    def microgrid_networks(self) -> dict[str, MicrogridNetwork] | None:
        """The microgrids' internal networks with ``microgrid_model = "internal"``, else None."""
        if self.microgrid_model != "internal":
            return None
        return load_microgrid_networks(self.data, NETWORKS[self.network])


class _Invalid(Exception):
    """Internal: a bad field, turned into :class:`ScenarioError` once the file is known
    (``file``: a data file the value comes from, instead of the scenario)."""

    def __init__(self, field: str, message: str, fix: str, file: Path | None = None) -> None:
        super().__init__(field, message, fix)
        self.field, self.message, self.fix, self.file = field, message, fix, file


# ----------------------------------------------------------------------------- public API


def default_scenario_path() -> Path:
    """Path of the default 24 h scenario, ``scenarios/base_day.toml``."""
    return Path(__file__).resolve().with_name("base_day.toml")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file ``path``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            path, "<file>", "does not exist", "give the path of an existing .toml scenario file"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(
            path, "<file>", f"cannot be read ({err})", "give a UTF-8 TOML text file"
        ) from None
    return load_scenario_text(text, path)


def load_scenario_text(text: str, path: Path | None = None) -> Scenario:
    """Validate a scenario given as TOML text; relative CSV paths are taken from ``path.parent``."""
    path = Path(path) if path is not None else None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(
            path,
            "<toml syntax>",
            str(err),
            "correct the TOML at that line (strings need quotes, tables are [name], arrays [a, b])",
        ) from None
    base_dir = path.parent if path is not None else Path.cwd()
    try:
        return _build(raw, path, base_dir)
    except _Invalid as bad:
        raise ScenarioError(bad.file or path, bad.field, bad.message, bad.fix) from None


# ----------------------------------------------------------------------------- assembly


def _build(raw: dict, path: Path | None, base_dir: Path) -> Scenario:
    _check_keys(raw, TOP_KEYS, "")
    network = _choice(raw.get("network", "ieee33"), "network", tuple(NETWORKS))
    duration_s, physical_s, controller_s, horizon_s = _read_timing(raw)
    start = _read_start(raw.get("start", DEFAULT_START))
    data = _read_data(raw, load_network_data(NETWORKS[network]), NETWORKS[network])
    mess = _read_mess(raw.get("mess", {}), data)
    if mess.placement == "given":
        data = dataclasses.replace(data, mess=mess_units(mess.buses))
    microgrid_model = _read_microgrid_model(raw.get("microgrid_model", "lumped"), data, network)
    if microgrid_model == "internal":
        data = with_feeder_head_limits(data, load_microgrid_networks(data, NETWORKS[network]))
    controller = _choice(raw.get("controller", "rule_based"), "controller", CONTROLLERS)
    faults = _read_faults(raw.get("faults", []), duration_s, data)
    return Scenario(
        path=path,
        name=_read_name(raw, path),
        network=network,
        start=start,
        duration_s=duration_s,
        physical_step_s=physical_s,
        controller_step_s=controller_s,
        horizon_s=horizon_s,
        seed=_read_seed(raw.get("seed", DEFAULT_SEED)),
        controller=controller,
        data=data,
        profiles=_read_profiles(
            raw.get("profiles", {}),
            base_dir,
            data,
            NETWORKS[network],
            profiles.Run(start, duration_s, physical_s),
        ),
        faults=faults,
        raw=raw,
        restoration=_read_restoration(raw.get("restoration", {}), physical_s),
        mess=mess,
        microgrid_model=microgrid_model,
        admm=_read_admm(raw.get("admm", {}), controller, bool(faults)),
        communication=_read_communication(raw, controller, data),
    )


# ----------------------------------------------------------------------------- typed values


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_keys(table: dict, allowed: Iterable[str], where: str, note: str = "") -> None:
    allowed = sorted(allowed)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise _Invalid(
            _join(where, str(unknown[0])),
            "is not a known key",
            f"check the spelling; valid keys: {', '.join(allowed)}{note}",
        )


def _table(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(field, f"is {value!r}, not a table", f"write it as a [{field}] table")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(
            field,
            f"has value {value!r} of type {type(value).__name__}",
            "give a number without quotes",
        )
    if not math.isfinite(value):
        raise _Invalid(field, f"is {value}", "give a finite number")
    return value


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(
            field,
            f"has value {value!r} of type {type(value).__name__}",
            "give a whole number without quotes or decimal point",
        )
    return value


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(
            field,
            f"has value {value!r} of type {type(value).__name__}",
            "give a text value in double quotes",
        )
    return value


def _choice(value: Any, field: str, valid: tuple[str, ...]) -> str:
    value = _string(value, field)
    if value not in valid:
        raise _Invalid(field, f"{value!r} is unknown", f"use one of: {', '.join(valid)}")
    return value


def _seconds(value: Any, field: str, unit_s: int) -> int:
    """A duration in hours (``unit_s`` 3600) or minutes (60) as whole seconds."""
    number = _number(value, field)
    seconds = number * unit_s
    whole = round(seconds)
    if abs(seconds - whole) > 1e-6:
        unit = "h" if unit_s == 3600 else "min"
        example = f", e.g. {whole / unit_s:g}" if whole else ""
        raise _Invalid(
            field,
            f"{number} {unit} is {seconds:g} s, not a whole number of seconds",
            f"give a value that comes to whole seconds (a multiple of 1/{unit_s} {unit}){example}",
        )
    return int(whole)


def _positive_seconds(raw: dict, key: str, default: float, unit_s: int) -> int:
    seconds = _seconds(raw.get(key, default), key, unit_s)
    if seconds <= 0:
        raise _Invalid(key, f"is {raw[key]}, not positive", "give a value > 0")
    return seconds


# ----------------------------------------------------------------------------- top level


def _read_name(raw: dict, path: Path | None) -> str:
    name = _string(raw.get("name", path.stem if path is not None else "scenario"), "name")
    if not name.strip():
        raise _Invalid("name", "is empty", 'give a short run name, e.g. "base_day"')
    return name


def _read_start(value: Any) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise _Invalid(
            "start",
            f"has value {value!r} of type {type(value).__name__}",
            "give a TOML date-time without quotes, e.g. 2026-06-01T00:00:00",
        )
    return value


def _read_seed(value: Any) -> int:
    seed = _integer(value, "seed")
    if seed < 0:
        raise _Invalid("seed", f"is {seed} (negative)", "give a whole number >= 0")
    return seed


def _read_timing(raw: dict) -> tuple[int, int, int, int]:
    """(duration, physical step, controller step, horizon) in seconds, checked for consistency."""
    duration = _positive_seconds(raw, "duration_h", 24, 3600)
    physical = _positive_seconds(raw, "physical_step_min", 15, 60)
    controller = _positive_seconds(raw, "controller_step_min", 60, 60)
    horizon = _positive_seconds(raw, "horizon_h", 24, 3600)
    if physical < MIN_PHYSICAL_STEP_S:
        raise _Invalid(
            "physical_step_min",
            f"{physical / 60:g} min is below the minimum of {MIN_PHYSICAL_STEP_S / 60:g} min "
            "(the grid is a quasi-static power flow, the controllers re-plan hourly)",
            f"use a step of at least {MIN_PHYSICAL_STEP_S / 60:g} min, e.g. 15",
        )
    if duration % physical:
        raise _Invalid(
            "physical_step_min",
            f"{physical / 60:g} min does not divide the duration ({duration / 3600:g} h)",
            _divisor_fix(duration, physical),
        )
    if controller % physical:
        raise _Invalid(
            "controller_step_min",
            f"{controller / 60:g} min is not a multiple of the "
            f"physical step ({physical / 60:g} min)",
            f"use a multiple of {physical / 60:g} min, e.g. {physical * 4 / 60:g}",
        )
    if duration % controller:
        raise _Invalid(
            "controller_step_min",
            f"{controller / 60:g} min does not divide the duration ({duration / 3600:g} h)",
            _divisor_fix(duration, controller),
        )
    if horizon < controller or horizon % controller:
        raise _Invalid(
            "horizon_h",
            f"{horizon / 3600:g} h is not a whole number (>= 1) of "
            f"controller steps ({controller / 60:g} min)",
            f"use a multiple of {controller / 3600:g} h, e.g. "
            f"{max(1, horizon // controller) * controller / 3600:g}",
        )
    _check_step_count(duration // physical, physical, _read_max_steps(raw))
    return duration, physical, controller, horizon


def _read_max_steps(raw: dict) -> int:
    limit = _integer(raw.get("max_steps", MAX_STEPS_DEFAULT), "max_steps")
    if limit < 1:
        raise _Invalid(
            "max_steps", f"is {limit}", f"give a whole number >= 1 (default {MAX_STEPS_DEFAULT})"
        )
    return limit


def _check_step_count(n_steps: int, physical_s: int, limit: int) -> None:
    """Refuse runs of more than ``limit`` physical steps (results and run time grow with them)."""
    if n_steps <= limit:
        return
    raise _Invalid(
        "duration_h",
        f"{n_steps * physical_s / 3600:g} h at {physical_s / 60:g} min steps is {n_steps:,} "
        f"physical steps (~{n_steps * RESULT_KB_PER_STEP / 1e6:.1f} GB of results), more than "
        f"the limit max_steps = {limit:,}",
        f"shorten duration_h to at most {limit * physical_s / 3600:g} h, lengthen "
        f"physical_step_min, or allow it with max_steps = {n_steps}",
    )


def _divisor_fix(duration_s: int, step_s: int) -> str:
    ok = [m for m in _STEP_CANDIDATES_MIN if duration_s % (60 * m) == 0]
    hint = f" ({', '.join(str(m) for m in ok)} min would)" if ok else ""
    return (
        f"use a step that divides {duration_s} s evenly{hint}, or make duration_h a "
        f"multiple of {step_s / 60:g} min"
    )


# ----------------------------------------------------------------------------- network data


def _read_data(raw: dict, base: NetworkData, data_dir: Path) -> NetworkData:
    """Built-in data with the [dso], [microgrids.*] and [pv.*] overrides, validated."""
    data = dataclasses.replace(
        base,
        microgrids=_override_named(raw.get("microgrids", {}), base.microgrids, "microgrids"),
        pv=_override_named(raw.get("pv", {}), base.pv, "pv"),
        dso=_override(raw.get("dso", {}), base.dso, "dso"),
    )
    _validate_params(data, raw, data_dir)
    _check_tariff(data.tariff, data_file(data_dir, "tariff.csv"))
    _check_buses(data, raw)
    return data


def _override_named(tables: Any, units: tuple, where: str) -> tuple:
    tables = _table(tables, where)
    names = [u.name for u in units]
    _check_keys(tables, names, where, note=" (names of the built-in units)")
    return tuple(
        _override(tables[u.name], u, f"{where}.{u.name}") if u.name in tables else u for u in units
    )


def _override(table: Any, params: object, where: str) -> object:
    table = _table(table, where)
    types = {f.name: f.type for f in fields(params) if f.name != "name"}
    note = " (a unit's name is its table key)" if "name" in table else ""
    _check_keys(table, types, where, note)
    for key, value in table.items():
        check = {"int": _integer, "float": _number, "str": _string}[types[key]]
        check(value, f"{where}.{key}")
    try:
        return with_overrides(params, table)
    except ParameterError as err:
        raise _Invalid(f"{where}.{err.field}", err.message, err.fix) from None


def _validate_params(data: NetworkData, raw: dict, data_dir: Path) -> None:
    items = [("dso", data.dso, raw.get("dso", {}))]
    items += [
        (f"microgrids.{mg.name}", mg, raw.get("microgrids", {}).get(mg.name, {}))
        for mg in data.microgrids
    ]
    items += [(f"pv.{pv.name}", pv, raw.get("pv", {}).get(pv.name, {})) for pv in data.pv]
    for where, params, overrides in items:
        try:
            params.validate()
        except ParameterError as err:
            raise _param_invalid(where, err, overrides, data_dir) from None


def _param_invalid(where: str, err: ParameterError, overrides: dict, data_dir: Path) -> _Invalid:
    """The bad field in the scenario when it was overridden there, else in its data file."""
    partners = [f for f in _PARTNERS.get(err.field, ()) if f in overrides]
    if err.field in overrides or partners:
        field = err.field if err.field in overrides else partners[0]
        return _Invalid(f"{where}.{field}", err.message, err.fix)
    table, _, unit = where.partition(".")
    row = f"{unit}." if unit else ""
    fix = f"{err.fix} (in the file, or override it in [{where}])"
    return _Invalid(f"{row}{err.field}", err.message, fix, data_file(data_dir, f"{table}.csv"))


def _check_tariff(tariff: pd.DataFrame, file: Path) -> None:
    """Prices finite and >= 0 for each of the hours 0..23."""
    if sorted(tariff.hour) != list(range(24)):
        raise _Invalid("hour", "does not list the hours 0..23 once each", "give 24 rows", file)
    for column in ("buy_price_cny_per_mwh", "sell_price_cny_per_mwh"):
        values = pd.to_numeric(tariff[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _Invalid(
                column,
                f"line {row + 2} has {tariff[column].iloc[row]}",
                "give a finite price >= 0 CNY/MWh",
                file,
            )


def _buses(data: NetworkData) -> list[int]:
    return sorted(set(data.branches.from_bus_ieee) | set(data.branches.to_bus_ieee))


def _check_buses(data: NetworkData, raw: dict) -> None:
    buses = _buses(data)
    valid = f"use an IEEE bus number in {buses[0]}..{buses[-1]}"
    for where, unit in [("microgrids", u) for u in data.microgrids] + [("pv", u) for u in data.pv]:
        if unit.bus_ieee not in buses:
            raise _Invalid(
                f"{where}.{unit.name}.bus_ieee", f"bus {unit.bus_ieee} does not exist", valid
            )
    # A scenario may not move a microgrid onto another's bus (a typo, most likely); the
    # network data may place several at one bus (the 48-microgrid feeder has two per bus).
    moved_here = {n for n, t in raw.get("microgrids", {}).items() if "bus_ieee" in t}
    seen: dict[int, str] = {}
    for mg in data.microgrids:
        other = seen.setdefault(mg.bus_ieee, mg.name)
        if other != mg.name and moved_here & {mg.name, other}:
            moved = mg.name if mg.name in moved_here else other
            taken = ", ".join(
                f"{m.name} at {m.bus_ieee}" for m in data.microgrids if m.name != moved
            )
            raise _Invalid(
                f"microgrids.{moved}.bus_ieee",
                f"{other} and {mg.name} are both at bus {mg.bus_ieee}",
                f"put each microgrid on its own bus (taken: {taken})",
            )


# ----------------------------------------------------------------------------- microgrid model


def _read_microgrid_model(value: Any, data: NetworkData, network: str) -> str:
    """``"lumped"`` or ``"internal"``; the internal networks must agree with ``data``."""
    model = _choice(value, "microgrid_model", MICROGRID_MODELS)
    if model == "internal" and network != "ieee33":
        raise _Invalid(
            "microgrid_model",
            f'network {network!r} has no internal microgrid networks (only "ieee33" has)',
            'use microgrid_model = "lumped" with this network',
        )
    if model == "internal":
        try:
            load_microgrid_networks(data, NETWORKS[network])
        except MicrogridDataError as err:
            raise _Invalid(
                "microgrid_model",
                f"the internal networks do not match the microgrid data ({err})",
                'use microgrid_model = "lumped" with these [microgrids] overrides, or make '
                "networks/data/mg_internal_*.csv add up to them",
            ) from None
    return model


# ----------------------------------------------------------------------------- restoration


def _read_restoration(value: Any, physical_s: int) -> RestorationSettings:
    table = _table(value, "restoration")
    if "time_limit_s" in table:
        raise _Invalid(
            "restoration.time_limit_s",
            "a wall-clock limit makes the plans depend on machine load",
            "remove it; mip_node_limit (default 100) bounds a solve deterministically",
        )
    _check_keys(table, [f.name for f in fields(RestorationSettings)], "restoration")
    default = RestorationSettings()
    method = _choice(table.get("method", default.method), "restoration.method", RESTORATION_METHODS)
    step_s = _seconds(table.get("step_min", physical_s / 60), "restoration.step_min", 60)
    if step_s <= 0 or step_s % physical_s:
        raise _Invalid(
            "restoration.step_min",
            f"{step_s / 60:g} min is not a positive multiple of the physical step "
            f"{physical_s / 60:g} min",
            f"use a multiple of {physical_s / 60:g} min (default: the physical step)",
        )
    margin_h = _number(table.get("margin_h", default.margin_h), "restoration.margin_h")
    if margin_h < 0:
        raise _Invalid("restoration.margin_h", f"is {margin_h}", "give hours >= 0 (default 1)")
    periods = _integer(table.get("max_periods", default.max_periods), "restoration.max_periods")
    if periods < 1:
        raise _Invalid("restoration.max_periods", f"is {periods}", "give a whole number >= 1")
    gap = _number(table.get("mip_rel_gap", default.mip_rel_gap), "restoration.mip_rel_gap")
    if not 0 <= gap < 1:
        raise _Invalid("restoration.mip_rel_gap", f"is {gap}", "give a gap in [0, 1), e.g. 0.01")
    nodes = _integer(
        table.get("mip_node_limit", default.mip_node_limit), "restoration.mip_node_limit"
    )
    if nodes < 1:
        raise _Invalid("restoration.mip_node_limit", f"is {nodes}", "give a whole number >= 1")
    return RestorationSettings(method, step_s / 60, float(margin_h), periods, float(gap), nodes)


def _read_admm(value: Any, controller: str, has_faults: bool) -> ADMMOptions:
    table = _table(value, "admm")
    _check_keys(table, [f.name for f in fields(ADMMOptions)], "admm")
    agents = _choice(table.get("agents", "in_process"), "admm.agents", ADMM_AGENTS)
    reference = table.get("reference", True)
    if not isinstance(reference, bool):
        raise _Invalid("admm.reference", f"is {reference!r}", "write true or false")
    if agents == "mosaik":
        if controller != "admm":
            raise _Invalid(
                "admm.agents",
                f'"mosaik" runs the bilevel ADMM, but controller is "{controller}"',
                'set controller = "admm", or remove admm.agents',
            )
        if reference:
            raise _Invalid(
                "admm.reference",
                "the centralised reference needs every microgrid's parameters in the DSO's "
                'process, which agents = "mosaik" keeps apart',
                'set reference = false in [admm] (or use agents = "in_process")',
            )
        if has_faults:
            raise _Invalid(
                "faults",
                "restoration planning is centralised (it needs every microgrid's model), "
                'which agents = "mosaik" keeps apart',
                'remove the [[faults]], or use agents = "in_process" in [admm]',
            )
    return ADMMOptions(agents, reference)


LINK_KEYS = tuple(f.name for f in fields(LinkSettings))
COMMUNICATION_KEYS = (
    *LINK_KEYS,
    "seed",
    "deadline_s",
    "finish_attempts",
    "missing_reply",
    "microgrids",
)


def _read_communication(
    raw: dict, controller: str, data: NetworkData
) -> CommunicationSettings | None:
    """The optional [communication] table (message faults of the ADMM, controllers.comms)."""
    if "communication" not in raw:
        return None
    table = _table(raw["communication"], "communication")
    _check_keys(table, COMMUNICATION_KEYS, "communication")
    if controller != "admm":
        raise _Invalid(
            "communication",
            f'models the ADMM\'s messages, but controller is "{controller}"',
            'set controller = "admm", or remove the [communication] table',
        )
    default = _read_link(table, "communication", LinkSettings())
    names = [mg.name for mg in data.microgrids]
    overrides = {}
    for name, link in _table(table.get("microgrids", {}), "communication.microgrids").items():
        where = f"communication.microgrids.{name}"
        if name not in names:
            raise _Invalid(
                where, "is not a microgrid of the network", f"use one of: {', '.join(names)}"
            )
        overrides[name] = _read_link(_table(link, where), where, default)
    if "seed" in table:
        seed = _nonnegative_int(table["seed"], "communication.seed")
    else:
        seed = _read_seed(raw.get("seed", DEFAULT_SEED))
    deadline_s = _number(
        table.get("deadline_s", CommunicationSettings.deadline_s), "communication.deadline_s"
    )
    if deadline_s <= 0:
        raise _Invalid("communication.deadline_s", f"is {deadline_s}", "give seconds > 0")
    attempts = _integer(
        table.get("finish_attempts", CommunicationSettings.finish_attempts),
        "communication.finish_attempts",
    )
    if attempts < 1:
        raise _Invalid("communication.finish_attempts", f"is {attempts}", "give an integer >= 1")
    missing = _choice(
        table.get("missing_reply", CommunicationSettings.missing_reply),
        "communication.missing_reply",
        MISSING_REPLY,
    )
    return CommunicationSettings(seed, default, overrides, float(deadline_s), attempts, missing)


def _read_link(table: dict, where: str, base: LinkSettings) -> LinkSettings:
    """A link's loss probability and delays (keys missing from ``table`` as in ``base``)."""
    if where != "communication":
        _check_keys(table, LINK_KEYS, where)
    loss = _number(table.get("loss_prob", base.loss_prob), f"{where}.loss_prob")
    if not 0 <= loss <= 1:
        raise _Invalid(f"{where}.loss_prob", f"is {loss}", "give a probability in [0, 1]")
    delays = {}
    for key in ("delay_s", "jitter_s"):
        value = _number(table.get(key, getattr(base, key)), f"{where}.{key}")
        if value < 0:
            raise _Invalid(f"{where}.{key}", f"is {value} (negative)", "give seconds >= 0")
        delays[key] = float(value)
    return LinkSettings(float(loss), **delays)


def _nonnegative_int(value: Any, field: str) -> int:
    number = _integer(value, field)
    if number < 0:
        raise _Invalid(field, f"is {number} (negative)", "give a whole number >= 0")
    return number


# ----------------------------------------------------------------------------- mobile storage


def mess_units(buses: Iterable[int]) -> tuple:
    """One unit of ``networks/data/mess.csv`` at each bus."""
    return _mess_params().units(buses)


def _mess_params():
    """``networks/data/mess.csv``, checked: a placed unit needs power and energy ratings."""
    from mgcosim.networks import params as data_files  # MESS_FILE read at call time

    try:
        params = data_files.load_mess_params()
    except ParameterError as err:
        raise _Invalid(err.field, err.message, err.fix, data_files.MESS_FILE) from None
    for name, unit in (("p_max_mw", "MW"), ("e_max_mwh", "MWh")):
        if getattr(params, name) <= 0:
            raise _Invalid(
                name,
                f"is {getattr(params, name)}, but a placed mobile storage unit needs a rating",
                f"give a rating > 0 {unit}, or set mess.placement = 'none' in the scenario",
                data_files.MESS_FILE,
            )
    return params


def _read_mess(value: Any, data: NetworkData) -> MessSettings:
    table = _table(value, "mess")
    _check_keys(table, [f.name for f in fields(MessSettings)], "mess")
    default = "given" if "buses" in table else "none"
    placement = _choice(table.get("placement", default), "mess.placement", MESS_PLACEMENTS)
    if placement != "given":
        if "buses" in table:
            raise _Invalid(
                "mess.buses",
                f"is read only with placement = 'given', not {placement!r}",
                "drop mess.buses, or set mess.placement = 'given'",
            )
        if placement != "none":
            _mess_params()
        return MessSettings(placement)
    return MessSettings(placement, _mess_buses(table.get("buses"), data))


def _mess_buses(value: Any, data: NetworkData) -> tuple[int, ...]:
    params = _mess_params()
    if not isinstance(value, list) or not value:
        raise _Invalid(
            "mess.buses", f"is {value!r}", "give a non-empty list of IEEE buses, e.g. [23]"
        )
    buses = [_integer(b, f"mess.buses[{i}]") for i, b in enumerate(value)]
    allowed = set(params.candidate_buses_ieee) & set(_buses(data))
    for i, bus in enumerate(buses):
        if bus not in allowed:
            raise _Invalid(
                f"mess.buses[{i}]",
                f"bus {bus} cannot host a mobile storage unit",
                f"use a candidate bus of networks/data/mess.csv: {min(allowed)}..{max(allowed)}",
            )
    if len(set(buses)) != len(buses):
        raise _Invalid("mess.buses", f"{buses} names a bus twice", "at most one unit per bus")
    if len(buses) > params.fleet_size_units:
        raise _Invalid(
            "mess.buses",
            f"{len(buses)} units but the fleet has {params.fleet_size_units}",
            f"place at most {params.fleet_size_units} units (fleet_size_units in mess.csv)",
        )
    return tuple(sorted(buses))


# ----------------------------------------------------------------------------- faults


def _read_faults(value: Any, duration_s: int, data: NetworkData) -> tuple[FaultEvent, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Invalid(
            "faults",
            f"is {value!r}, not a list of tables",
            "write each fault as its own [[faults]] table",
        )
    events = [_read_fault(item, i, duration_s, data) for i, item in enumerate(value)]
    names: set[str] = set()
    for i, event in enumerate(events):
        if event.name in names:
            raise _Invalid(
                f"faults[{i}].name", f"{event.name!r} is used twice", "give each fault its own name"
            )
        names.add(event.name)
    return tuple(events)


def _read_fault(item: dict, i: int, duration_s: int, data: NetworkData) -> FaultEvent:
    where = f"faults[{i}]"
    _check_keys(item, FAULT_KEYS, where)
    name = _string(item.get("name", f"fault_{i + 1}"), f"{where}.name")
    kind = _choice(item.get("kind", "branch"), f"{where}.kind", FAULT_KINDS)
    branch = _fault_branch(item, kind, where, data)
    start_s = _seconds(
        _required(item, "start_h", where, "hours after the start"), f"{where}.start_h", 3600
    )
    if not 0 <= start_s < duration_s:
        raise _Invalid(
            f"{where}.start_h",
            f"{item['start_h']} h lies outside the scenario",
            f"give a start in [0, {duration_s / 3600:g}) h",
        )
    repair_s = _seconds(
        _required(item, "repair_h", where, "hours until repaired"), f"{where}.repair_h", 3600
    )
    if repair_s <= 0:
        raise _Invalid(
            f"{where}.repair_h", f"is {item['repair_h']}, not positive", "give a repair time > 0 h"
        )
    return FaultEvent(name, kind, branch, start_s, repair_s)


def _required(item: dict, key: str, where: str, meaning: str) -> Any:
    if key not in item:
        raise _Invalid(f"{where}.{key}", "is missing", f"add {key} = <{meaning}>")
    return item[key]


def _fault_branch(item: dict, kind: str, where: str, data: NetworkData) -> int | None:
    has_branch, has_buses = "branch" in item, "buses" in item
    if kind == "main_grid":
        if has_branch or has_buses:
            key = "branch" if has_branch else "buses"
            raise _Invalid(
                f"{where}.{key}",
                "is given for a main_grid fault",
                'remove it, or set kind = "branch"',
            )
        return None
    if has_branch == has_buses:
        state = "both given" if has_branch else "both missing"
        raise _Invalid(
            f"{where}.branch",
            f"branch and buses are {state}",
            "give exactly one: branch = <IEEE branch> or buses = [a, b]",
        )
    if has_branch:
        return _branch_number(item["branch"], f"{where}.branch", data)
    return _branch_of_buses(item["buses"], f"{where}.buses", data)


def _branch_number(value: Any, field: str, data: NetworkData) -> int:
    branch = _integer(value, field)
    valid = sorted(int(b) for b in data.branches.branch_ieee)
    if branch not in valid:
        raise _Invalid(
            field,
            f"branch {branch} does not exist",
            f"use an IEEE branch number in {valid[0]}..{valid[-1]}",
        )
    return branch


def _branch_of_buses(value: Any, field: str, data: NetworkData) -> int:
    if not isinstance(value, list) or len(value) != 2:
        raise _Invalid(field, f"is {value!r}", "give two IEEE bus numbers, e.g. buses = [12, 13]")
    a, b = (_integer(v, field) for v in value)
    buses = _buses(data)
    for bus in (a, b):
        if bus not in buses:
            raise _Invalid(
                field,
                f"bus {bus} does not exist",
                f"use IEEE bus numbers in {buses[0]}..{buses[-1]}",
            )
    br = data.branches
    hit = br[
        ((br.from_bus_ieee == a) & (br.to_bus_ieee == b))
        | ((br.from_bus_ieee == b) & (br.to_bus_ieee == a))
    ]
    if hit.empty:
        near = sorted(
            {int(x) for x in br.to_bus_ieee[br.from_bus_ieee == a]}
            | {int(x) for x in br.from_bus_ieee[br.to_bus_ieee == a]}
        )
        raise _Invalid(
            field,
            f"no branch joins buses {a} and {b}",
            f"give two adjacent buses (bus {a} is joined to {near}) or use branch = N",
        )
    return int(hit.branch_ieee.iloc[0])


# ----------------------------------------------------------------------------- profiles


def _read_profiles(
    value: Any, base_dir: Path, data: NetworkData, data_dir: Path, run: profiles.Run
) -> ProfileSettings:
    """The [profiles] table; the profile file is read and checked by :mod:`.profiles`."""
    table = _table(value, "profiles")
    defaults = {
        f.name: f.default
        for f in fields(ProfileSettings)
        if f.name not in ("source", "table", "repeat", "given")
    }
    _check_keys(table, ["source", "repeat", *defaults], "profiles")
    source = _profile_source(table.get("source", BUILTIN), base_dir)
    repeat = table.get("repeat")
    if repeat is not None:
        repeat = _choice(repeat, "profiles.repeat", profiles.REPEATS)
        if source is None and repeat != "daily":
            raise _Invalid(
                "profiles.repeat",
                f"is {repeat!r}, but the built-in shapes are one day",
                "drop repeat (the built-in day repeats daily), or give a source file",
            )
    builtin = pd.read_csv(data_file(data_dir, "profiles_default.csv"))
    try:
        shapes, repeat, given = profiles.read_table(source, repeat, data, builtin, run)
    except profiles.ProfileError as err:
        raise _Invalid(err.field, err.message, err.fix) from None
    settings = {
        key: _profile_number(table.get(key, default), key, type(default))
        for key, default in defaults.items()
    }
    _check_profile_settings(settings)
    return ProfileSettings(source=source, table=shapes, repeat=repeat, given=given, **settings)


def _profile_source(value: Any, base_dir: Path) -> Path | None:
    text = _string(value, "profiles.source")
    if text == BUILTIN:
        return None
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not path.exists():
        raise _Invalid(
            "profiles.source",
            f"file {path} does not exist",
            f'give a CSV or Parquet path relative to {base_dir} or "{BUILTIN}"',
        )
    return path.resolve()


def _profile_number(value: Any, key: str, kind: type) -> float | int:
    field = f"profiles.{key}"
    return _integer(value, field) if kind is int else float(_number(value, field))


def _check_profile_settings(s: dict) -> None:
    for key, value in s.items():
        field = f"profiles.{key}"
        if key.endswith("_sigma_pu") and value < 0:
            raise _Invalid(field, f"is {value} (negative)", "give a standard deviation >= 0")
        if key.endswith("_phi_per_h") and not 0 <= value < 1:
            raise _Invalid(field, f"is {value}", "give an autocorrelation in [0, 1)")
        if key in ("wind_samples", "wind_scenarios") and value < 1:
            raise _Invalid(field, f"is {value}", "give a whole number >= 1")
    if s["wind_scenarios"] > s["wind_samples"]:
        raise _Invalid(
            "profiles.wind_scenarios",
            f"{s['wind_scenarios']} exceeds wind_samples {s['wind_samples']}",
            "keep at most as many scenarios as are sampled (wind_scenarios <= wind_samples)",
        )
