"""Typed values of a scenario file: numbers, whole numbers, text, choices, tables, durations.

Each helper takes a TOML value and the dotted field it came from, and returns it checked or
raises :class:`Invalid` naming that field and the fix. :class:`Invalid` is the readers' own
error; :func:`scenarios.loader.load_scenario_text` turns it into a ``ScenarioError`` once the
scenario file is known. The per-table readers (``read_network``, ``read_tables``,
``read_faults``, ``read_profiles``) and the loader's top-level keys are all built from these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class Invalid(Exception):
    """Internal: a bad field, turned into :class:`ScenarioError` once the file is known
    (``file``: a data file the value comes from, instead of the scenario)."""

    def __init__(self, field: str, message: str, fix: str, file: Path | None = None) -> None:
        super().__init__(field, message, fix)
        self.field, self.message, self.fix, self.file = field, message, fix, file


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def check_keys(table: dict, allowed: Iterable[str], where: str, note: str = "") -> None:
    allowed = sorted(allowed)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise Invalid(
            _join(where, str(unknown[0])),
            "is not a known key",
            f"check the spelling; valid keys: {', '.join(allowed)}{note}",
        )


def as_table(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(field, f"is {value!r}, not a table", f"write it as a [{field}] table")
    return value


def as_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(
            field,
            f"has value {value!r} of type {type(value).__name__}",
            "give a number without quotes",
        )
    if not math.isfinite(value):
        raise Invalid(field, f"is {value}", "give a finite number")
    return value


def as_integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(
            field,
            f"has value {value!r} of type {type(value).__name__}",
            "give a whole number without quotes or decimal point",
        )
    return value


def as_string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Invalid(
            field,
            f"has value {value!r} of type {type(value).__name__}",
            "give a text value in double quotes",
        )
    return value


def as_choice(value: Any, field: str, valid: tuple[str, ...]) -> str:
    value = as_string(value, field)
    if value not in valid:
        raise Invalid(field, f"{value!r} is unknown", f"use one of: {', '.join(valid)}")
    return value


def as_seconds(value: Any, field: str, unit_s: int) -> int:
    """A duration in hours (``unit_s`` 3600) or minutes (60) as whole seconds."""
    number = as_number(value, field)
    seconds = number * unit_s
    whole = round(seconds)
    if abs(seconds - whole) > 1e-6:
        unit = "h" if unit_s == 3600 else "min"
        example = f", e.g. {whole / unit_s:g}" if whole else ""
        raise Invalid(
            field,
            f"{number} {unit} is {seconds:g} s, not a whole number of seconds",
            f"give a value that comes to whole seconds (a multiple of 1/{unit_s} {unit}){example}",
        )
    return int(whole)


def positive_seconds(raw: dict, key: str, default: float, unit_s: int) -> int:
    seconds = as_seconds(raw.get(key, default), key, unit_s)
    if seconds <= 0:
        raise Invalid(key, f"is {raw[key]}, not positive", "give a value > 0")
    return seconds


def read_seed(value: Any) -> int:
    seed = as_integer(value, "seed")
    if seed < 0:
        raise Invalid("seed", f"is {seed} (negative)", "give a whole number >= 0")
    return seed
