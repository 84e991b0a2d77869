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

This module reads the top-level keys (timing, name, start, seed) and assembles the
:class:`Scenario`; the tables are read by :mod:`scenarios.read_network` ([dso],
[microgrids.*], [pv.*], ``microgrid_model``), :mod:`scenarios.read_profiles`,
:mod:`scenarios.read_faults` and :mod:`scenarios.read_tables` ([restoration], [admm],
[communication], [mess]), all from the typed-value helpers of :mod:`scenarios.read_values`;
the settings dataclasses they return are in :mod:`scenarios.settings`.
"""

from __future__ import annotations

import dataclasses
import datetime
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgcosim.controllers.comms import CommunicationSettings
from mgcosim.networks.microgrid_internal import (
    MicrogridNetwork,
    load_microgrid_networks,
    with_feeder_head_limits,
)
from mgcosim.networks.params import NetworkData, load_network_data
from mgcosim.scenarios.profile_time import Run
from mgcosim.scenarios.profiles import ProfileSettings
from mgcosim.scenarios.read_faults import read_faults
from mgcosim.scenarios.read_network import read_data, read_microgrid_model
from mgcosim.scenarios.read_profiles import read_profiles
from mgcosim.scenarios.read_tables import (
    mess_units,
    read_admm,
    read_communication,
    read_mess,
    read_restoration,
)
from mgcosim.scenarios.read_values import (
    Invalid,
    as_choice,
    as_integer,
    as_string,
    check_keys,
    positive_seconds,
    read_seed,
)
from mgcosim.scenarios.settings import (
    DEFAULT_SEED,
    NETWORKS,
    ADMMOptions,
    FaultEvent,
    MessSettings,
    RestorationSettings,
)

CONTROLLERS = ("rule_based", "centralised", "admm")
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
DEFAULT_START = datetime.datetime(2026, 6, 1)
_STEP_CANDIDATES_MIN = (1, 5, 10, 15, 20, 30, 60)
# The grid is a quasi-static AC power flow (no dynamics below minutes), the profiles are
# hourly tables and the controllers re-plan hourly: shorter steps add run time, not physics.
MIN_PHYSICAL_STEP_S = 60
# One year at the default 15 min step (8,760 hourly controller steps). A run writes about
# RESULT_KB_PER_STEP of results per physical step (measured on the base day: 440 kB for 96
# steps), so the default limit is ~160 MB; 400,000 steps would be ~1.8 GB and days of run.
MAX_STEPS_DEFAULT = 35_040
RESULT_KB_PER_STEP = 4.6


class ScenarioError(ValueError):
    """A scenario file that cannot be run: ``path``, ``field`` (dotted), ``message``, ``fix``."""

    def __init__(self, path: Path | None, field: str, message: str, fix: str) -> None:
        shown = path if path is not None else "<string>"
        super().__init__(f"{shown}: field '{field}': {message}. Fix: {fix}")
        self.path = path
        self.field = field
        self.message = message
        self.fix = fix


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
    except Invalid as bad:
        raise ScenarioError(bad.file or path, bad.field, bad.message, bad.fix) from None


# ----------------------------------------------------------------------------- assembly


def _build(raw: dict, path: Path | None, base_dir: Path) -> Scenario:
    check_keys(raw, TOP_KEYS, "")
    network = as_choice(raw.get("network", "ieee33"), "network", tuple(NETWORKS))
    duration_s, physical_s, controller_s, horizon_s = _read_timing(raw)
    start = _read_start(raw.get("start", DEFAULT_START))
    data = read_data(raw, load_network_data(NETWORKS[network]), NETWORKS[network])
    mess = read_mess(raw.get("mess", {}), data)
    if mess.placement == "given":
        data = dataclasses.replace(data, mess=mess_units(mess.buses))
    microgrid_model = read_microgrid_model(raw.get("microgrid_model", "lumped"), data, network)
    if microgrid_model == "internal":
        data = with_feeder_head_limits(data, load_microgrid_networks(data, NETWORKS[network]))
    controller = as_choice(raw.get("controller", "rule_based"), "controller", CONTROLLERS)
    faults = read_faults(raw.get("faults", []), duration_s, data)
    return Scenario(
        path=path,
        name=_read_name(raw, path),
        network=network,
        start=start,
        duration_s=duration_s,
        physical_step_s=physical_s,
        controller_step_s=controller_s,
        horizon_s=horizon_s,
        seed=read_seed(raw.get("seed", DEFAULT_SEED)),
        controller=controller,
        data=data,
        profiles=read_profiles(
            raw.get("profiles", {}),
            base_dir,
            data,
            NETWORKS[network],
            Run(start, duration_s, physical_s),
        ),
        faults=faults,
        raw=raw,
        restoration=read_restoration(raw.get("restoration", {}), physical_s),
        mess=mess,
        microgrid_model=microgrid_model,
        admm=read_admm(raw.get("admm", {}), controller, bool(faults)),
        communication=read_communication(raw, controller, data),
    )


# ----------------------------------------------------------------------------- top level


def _read_name(raw: dict, path: Path | None) -> str:
    name = as_string(raw.get("name", path.stem if path is not None else "scenario"), "name")
    if not name.strip():
        raise Invalid("name", "is empty", 'give a short run name, e.g. "base_day"')
    return name


def _read_start(value: Any) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise Invalid(
            "start",
            f"has value {value!r} of type {type(value).__name__}",
            "give a TOML date-time without quotes, e.g. 2026-06-01T00:00:00",
        )
    return value


def _read_timing(raw: dict) -> tuple[int, int, int, int]:
    """(duration, physical step, controller step, horizon) in seconds, checked for consistency."""
    duration = positive_seconds(raw, "duration_h", 24, 3600)
    physical = positive_seconds(raw, "physical_step_min", 15, 60)
    controller = positive_seconds(raw, "controller_step_min", 60, 60)
    horizon = positive_seconds(raw, "horizon_h", 24, 3600)
    if physical < MIN_PHYSICAL_STEP_S:
        raise Invalid(
            "physical_step_min",
            f"{physical / 60:g} min is below the minimum of {MIN_PHYSICAL_STEP_S / 60:g} min "
            "(the grid is a quasi-static power flow, the controllers re-plan hourly)",
            f"use a step of at least {MIN_PHYSICAL_STEP_S / 60:g} min, e.g. 15",
        )
    if duration % physical:
        raise Invalid(
            "physical_step_min",
            f"{physical / 60:g} min does not divide the duration ({duration / 3600:g} h)",
            _divisor_fix(duration, physical),
        )
    if controller % physical:
        raise Invalid(
            "controller_step_min",
            f"{controller / 60:g} min is not a multiple of the "
            f"physical step ({physical / 60:g} min)",
            f"use a multiple of {physical / 60:g} min, e.g. {physical * 4 / 60:g}",
        )
    if duration % controller:
        raise Invalid(
            "controller_step_min",
            f"{controller / 60:g} min does not divide the duration ({duration / 3600:g} h)",
            _divisor_fix(duration, controller),
        )
    if horizon < controller or horizon % controller:
        raise Invalid(
            "horizon_h",
            f"{horizon / 3600:g} h is not a whole number (>= 1) of "
            f"controller steps ({controller / 60:g} min)",
            f"use a multiple of {controller / 3600:g} h, e.g. "
            f"{max(1, horizon // controller) * controller / 3600:g}",
        )
    _check_step_count(duration // physical, physical, _read_max_steps(raw))
    return duration, physical, controller, horizon


def _read_max_steps(raw: dict) -> int:
    limit = as_integer(raw.get("max_steps", MAX_STEPS_DEFAULT), "max_steps")
    if limit < 1:
        raise Invalid(
            "max_steps", f"is {limit}", f"give a whole number >= 1 (default {MAX_STEPS_DEFAULT})"
        )
    return limit


def _check_step_count(n_steps: int, physical_s: int, limit: int) -> None:
    """Refuse runs of more than ``limit`` physical steps (results and run time grow with them)."""
    if n_steps <= limit:
        return
    raise Invalid(
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
