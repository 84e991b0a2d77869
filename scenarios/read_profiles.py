"""The ``[profiles]`` table of a scenario file: the profile source and the forecast-error settings.

Resolves ``source`` (``"builtin"`` or a CSV / Parquet path relative to the scenario file), has
:mod:`scenarios.profiles` read and check that file against the run, and checks the forecast-error
numbers (standard deviations >= 0, autocorrelations in [0, 1), scenario counts). Returns
:class:`scenarios.profiles.ProfileSettings`.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from mgcosim.networks.params import NetworkData, data_file
from mgcosim.scenarios import profiles
from mgcosim.scenarios.profile_time import ProfileError, Run
from mgcosim.scenarios.profiles import ProfileSettings
from mgcosim.scenarios.read_values import (
    Invalid,
    as_choice,
    as_integer,
    as_number,
    as_string,
    as_table,
    check_keys,
)

BUILTIN = "builtin"


def read_profiles(
    value: Any, base_dir: Path, data: NetworkData, data_dir: Path, run: Run
) -> ProfileSettings:
    """The [profiles] table; the profile file is read and checked by :mod:`.profiles`."""
    table = as_table(value, "profiles")
    defaults = {
        f.name: f.default
        for f in fields(ProfileSettings)
        if f.name not in ("source", "table", "repeat", "given")
    }
    check_keys(table, ["source", "repeat", *defaults], "profiles")
    source = _profile_source(table.get("source", BUILTIN), base_dir)
    repeat = table.get("repeat")
    if repeat is not None:
        repeat = as_choice(repeat, "profiles.repeat", profiles.REPEATS)
        if source is None and repeat != "daily":
            raise Invalid(
                "profiles.repeat",
                f"is {repeat!r}, but the built-in shapes are one day",
                "drop repeat (the built-in day repeats daily), or give a source file",
            )
    builtin = pd.read_csv(data_file(data_dir, "profiles_default.csv"))
    try:
        shapes, repeat, given = profiles.read_table(source, repeat, data, builtin, run)
    except ProfileError as err:
        raise Invalid(err.field, err.message, err.fix) from None
    settings = {
        key: _profile_number(table.get(key, default), key, type(default))
        for key, default in defaults.items()
    }
    _check_profile_settings(settings)
    return ProfileSettings(source=source, table=shapes, repeat=repeat, given=given, **settings)


def _profile_source(value: Any, base_dir: Path) -> Path | None:
    text = as_string(value, "profiles.source")
    if text == BUILTIN:
        return None
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not path.exists():
        raise Invalid(
            "profiles.source",
            f"file {path} does not exist",
            f'give a CSV or Parquet path relative to {base_dir} or "{BUILTIN}"',
        )
    return path.resolve()


def _profile_number(value: Any, key: str, kind: type) -> float | int:
    field = f"profiles.{key}"
    return as_integer(value, field) if kind is int else float(as_number(value, field))


def _check_profile_settings(s: dict) -> None:
    for key, value in s.items():
        field = f"profiles.{key}"
        if key.endswith("_sigma_pu") and value < 0:
            raise Invalid(field, f"is {value} (negative)", "give a standard deviation >= 0")
        if key.endswith("_phi_per_h") and not 0 <= value < 1:
            raise Invalid(field, f"is {value}", "give an autocorrelation in [0, 1)")
        if key in ("wind_samples", "wind_scenarios") and value < 1:
            raise Invalid(field, f"is {value}", "give a whole number >= 1")
    if s["wind_scenarios"] > s["wind_samples"]:
        raise Invalid(
            "profiles.wind_scenarios",
            f"{s['wind_scenarios']} exceeds wind_samples {s['wind_samples']}",
            "keep at most as many scenarios as are sampled (wind_scenarios <= wind_samples)",
        )
