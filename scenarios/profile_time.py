"""The time column of a profile table (:mod:`scenarios.profiles`) and the error every profile
check raises: ``hour`` values or date-times turned into hours after midnight of the start
day, checked strictly increasing; whether the table repeats daily; whether it covers the run.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

FIELD = "profiles.source"


class ProfileError(Exception):
    """A bad profile table: ``field``, ``message``, ``fix`` (as the loader reports them)."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        super().__init__(field, message, fix)
        self.field, self.message, self.fix = field, message, fix


@dataclass(frozen=True)
class Run:
    """What the table must cover: start, duration and physical step of the scenario."""

    start: datetime.datetime
    duration_s: int
    step_s: int

    @property
    def start_h(self) -> float:
        """Clock hour of the start (hours after midnight of the start day)."""
        s = self.start
        return s.hour + s.minute / 60 + s.second / 3600

    def last_step_h(self) -> float:
        """Start of the last physical step, hours after midnight of the start day."""
        return self.start_h + (self.duration_s - self.step_s) / 3600


class Lines:
    """Row numbers as the user sees them: CSV line (header = line 1) or Parquet row."""

    def __init__(self, name: str, parquet: bool) -> None:
        self.name, self.parquet = name, parquet

    def __call__(self, row: int) -> str:
        return f"{self.name} row {row + 1}" if self.parquet else f"{self.name} line {row + 2}"


def hour_values(hours: pd.Series, lines: Lines) -> np.ndarray:
    field = f"{FIELD}[hour]"
    values = pd.to_numeric(hours, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype(float))
    if bad.any() or hours.dtype == bool:
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise ProfileError(
            field,
            f"{lines(row)} has {hours.iloc[row]!r}, not a number of hours",
            "give hours as numbers, e.g. 0, 0.25, 0.5",
        )
    h = values.to_numpy(dtype=float)
    check_increasing(h, "hour", lines, lambda x: f"{x:g}")
    if h[0] < 0:
        raise ProfileError(field, f"the first hour is {h[0]:g}", "start the table at hour 0")
    return h


def check_increasing(values: np.ndarray, name: str, lines: Lines, show) -> None:
    steps = np.diff(values)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ProfileError(
            f"{FIELD}[{name}]",
            f"{lines(row)} has {name} {show(values[row])} after {show(values[row - 1])}",
            f"list the {name} values strictly increasing",
        )


def hour_repeat(h: np.ndarray, repeat: str | None, run: Run, name: str, lines: Lines) -> str:
    """``"daily"`` or ``"none"`` for an hour table; a daily shape must be one day from 0."""
    if repeat == "none":
        return repeat
    field = f"{FIELD}[hour]"
    several = ' (for a table of several days set repeat = "none" in [profiles])'
    if h[0] != 0:
        raise ProfileError(field, f"the first hour is {h[0]:g}", "start the table at hour 0")
    if h[-1] >= 24:
        raise ProfileError(
            field,
            f"hour {h[-1]:g} is not in [0, 24)",
            f"give hours of one day, 0 <= hour < 24{several}",
        )
    if repeat is None and run.last_step_h() >= 24:
        raise ProfileError(
            field,
            f"{name} holds one day (hours {h[0]:g} .. {h[-1]:g}) but the run lasts until "
            f"{run.last_step_h() + run.step_s / 3600:g} h after midnight of the start day",
            'say repeat = "daily" in [profiles] to repeat the day, or give a table that covers '
            'the run with repeat = "none"',
        )
    return "daily"


def time_repeat(repeat: str | None) -> str:
    if repeat == "daily":
        raise ProfileError(
            "profiles.repeat",
            "a table indexed by date-time is never repeated",
            'drop repeat, or give a daily shape with an hour column for repeat = "daily"',
        )
    return "none"


def datetime_hours(values: pd.Series, run: Run, lines: Lines) -> np.ndarray:
    """Hours after midnight of the scenario's start day."""
    field = f"{FIELD}[time]"
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ProfileError(field, f"{lines.name} holds times with a UTC offset", _naive_fix())
    if pd.api.types.is_datetime64_any_dtype(values):
        times = values
    else:
        times = pd.to_datetime(values.astype(str), errors="coerce", format="ISO8601")
        if isinstance(times.dtype, pd.DatetimeTZDtype):
            raise ProfileError(field, f"{lines.name} holds times with a UTC offset", _naive_fix())
    bad = times.isna() | values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        shown = "an empty cell" if pd.isna(values.iloc[row]) else repr(values.iloc[row])
        raise ProfileError(
            field,
            f"{lines(row)} has {shown}, not a date-time",
            "give ISO date-times such as 2016-06-01 00:15:00",
        )
    midnight = pd.Timestamp(run.start.date())
    seconds = (times - midnight).dt.total_seconds().to_numpy(dtype=float)
    check_increasing(seconds, "time", lines, lambda s: str(midnight + pd.Timedelta(seconds=s)))
    return seconds / 3600


def _naive_fix() -> str:
    return "give local date-times without an offset, in the clock of the scenario's start"


def check_covers(hours: np.ndarray, frame: pd.DataFrame, column: str, run: Run, name: str) -> None:
    first_h, last_h = run.start_h, run.last_step_h()
    if hours[0] <= first_h + 1e-9 and hours[-1] >= last_h - 1e-9:
        return
    midnight = pd.Timestamp(run.start.date())

    def at(h: float) -> str:
        return str(midnight + pd.Timedelta(seconds=round(h * 3600)))

    step = f"{run.step_s / 60:g}-min"
    raise ProfileError(
        f"{FIELD}[{column}]",
        f"{name} runs from {at(hours[0])} to {at(hours[-1])}, but the run needs values from "
        f"{at(first_h)} to {at(last_h)} (the start of its last {step} step)",
        "give rows that cover the run, or shorten duration_h / move start into the table",
    )
