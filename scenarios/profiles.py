"""Profile tables of a scenario (``[profiles] source``): reading, checking and sampling.

Formats
-------
A profile file is CSV (any name) or Parquet (``.parquet`` / ``.pq``) with one time column:

* ``hour``: hours after midnight of the scenario's start day. A table with hours in [0, 24)
  and first hour 0 is a *daily shape*; it is repeated every day only when the scenario says
  so (``repeat = "daily"``) or when the run lies inside that one day (the old behaviour,
  unchanged). With ``repeat = "none"`` the hours may run over several days (0 .. 47.75 ...).
* ``time``: date-times in the scenario's clock (like ``start``: no UTC offset), e.g.
  ``2016-06-01 00:15:00``; in a Parquet file a ``DatetimeIndex`` serves as well. A time
  table is never repeated: it must cover the run.

Value columns, each ending in its unit (``_pu`` or ``_mw``):

* generic shapes ``load_pu`` (per unit of each load's peak), ``wind_pu`` and ``pv_pu``
  (per unit of rating, in [0, 1]); missing ones are interpolated from the built-in daily
  table at the rows' clock hours. Generic columns are per unit only.
* unit columns ``<unit>_pu`` or ``<unit>_mw`` for a unit of the network (``MG1_wind``,
  ``MG1_load``, ``PV_b18``, ``load_b5`` ...); MW values are divided by the unit's rating
  (``wind_p_rated_mw``, ``load_p_peak_mw``, ``p_rated_mw``, the IEEE 33 nominal load), with
  the scenario's overrides, and wind/PV must stay within that rating.
* actual series ``<unit>_actual_pu`` / ``<unit>_actual_mw`` and ``load_actual_pu``,
  ``wind_actual_pu``, ``pv_actual_pu``: what happened. A unit with an actual series is
  realised exactly as given (no noise). Its day-ahead forecast is its forecast column (unit
  or generic column present in the file) when there is one; otherwise it is drawn from the
  scenario's forecast-error model around the actuals (:func:`sim.stochastic.forecast_around`).

Values are points in time, interpolated linearly between rows; each physical step is sampled
at its start. A non-repeating table covers the run when every step's start lies within its
first and last row. Past the last row, the look-ahead of the last plans (up to one horizon)
takes the value one day earlier (hold the last value if the table is shorter than a day).
Every value must be a finite number >= 0; a mistake raises :class:`ProfileError` naming the
file, the column (``profiles.source[column]``), the line (CSV: line 1 is the header; Parquet:
data rows counted from 1) and the fix.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mgcosim.networks.params import NetworkData
from mgcosim.scenarios.profile_time import (
    FIELD,
    Lines,
    ProfileError,
    Run,
    check_covers,
    datetime_hours,
    hour_repeat,
    hour_values,
    time_repeat,
)

PROFILE_COLUMNS = ("load_pu", "wind_pu", "pv_pu")
ACTUAL_COLUMNS = ("load_actual_pu", "wind_actual_pu", "pv_actual_pu")
REPEATS = ("daily", "none")
PARQUET_SUFFIXES = (".parquet", ".pq")
DAY_S = 86_400


@dataclass(frozen=True, eq=False)
class ProfileSettings:
    """Profile table (``table``, all values per unit) and the forecast-error settings.

    ``table`` has ``hour`` (hours after midnight of the start day) first, then the generic
    shapes, then unit and actual columns (MW columns converted to ``<unit>_pu``); a time table
    also keeps its ``time`` column. ``repeat`` is ``"daily"`` (cyclic over 24 h) or
    ``"none"``; ``given`` names the columns that came from the file (not the built-in fill).
    """

    source: Path | None
    table: pd.DataFrame
    wind_sigma_pu: float = 0.10
    wind_phi_per_h: float = 0.85
    load_sigma_pu: float = 0.03
    load_phi_per_h: float = 0.90
    pv_sigma_pu: float = 0.08
    pv_phi_per_h: float = 0.80
    wind_samples: int = 100
    wind_scenarios: int = 10
    repeat: str = "daily"
    given: frozenset[str] = field(default_factory=frozenset)

    def column(self, unit: str, generic: str) -> str:
        """The forecast column of ``unit``: its own, else the generic shape ``generic``."""
        return f"{unit}_pu" if f"{unit}_pu" in self.table.columns else generic

    def actual_column(self, unit: str, generic: str) -> str | None:
        """The actual-series column of ``unit`` (its own, else the generic one), or None."""
        for name in (f"{unit}_actual_pu", generic.replace("_pu", "_actual_pu")):
            if name in self.table.columns:
                return name
        return None

    def has_forecast(self, unit: str, generic: str) -> bool:
        """Whether the file gives a forecast for ``unit`` (not only the built-in fill)."""
        return self.column(unit, generic) in self.given

    def shape_pu(self, unit: str, generic: str, start_h: float, step_h: float, n: int):
        """Forecast of ``unit`` in per unit at ``start_h + k step_h`` h, k = 0..n-1."""
        return self.values_pu(self.column(unit, generic), start_h, step_h, n)

    def actual_pu(self, unit: str, generic: str, start_h: float, step_h: float, n: int):
        """Actual series of ``unit`` in per unit at the steps, or None when none is given."""
        column = self.actual_column(unit, generic)
        return None if column is None else self.values_pu(column, start_h, step_h, n)

    def values_pu(self, column: str, start_h: float, step_h: float, n: int) -> np.ndarray:
        """``table[column]`` at ``start_h + k step_h`` (hours after midnight of the start day)."""
        from mgcosim.sim.stochastic import shape_at_steps

        if self.repeat == "daily":
            return shape_at_steps(self.table, column, start_h, step_h, n)
        return series_at_steps(self.table, column, start_h, step_h, n)

    def hourly_table(self, start_h: float, n_periods: int) -> pd.DataFrame:
        """The generic shapes at ``start_h, start_h + 1, ...`` as a table of those hours: a
        daily table as it is; else one row per period, so that a 24-h periodic interpolation
        at those hours (``controllers.robust_data.hourly_shapes``) returns exactly these values."""
        if self.repeat == "daily":
            return self.table
        if n_periods > 24:
            raise ValueError(f"at most 24 hourly periods from a non-repeating table: {n_periods}")
        values = {c: self.values_pu(c, start_h, 1.0, n_periods) for c in PROFILE_COLUMNS}
        return pd.DataFrame({"hour": start_h + np.arange(n_periods, dtype=float), **values})


def series_at_steps(
    table: pd.DataFrame, column: str, start_h: float, step_h: float, n: int
) -> np.ndarray:
    """A non-repeating series at ``start_h + k step_h`` h, linear between rows, sampled in
    whole seconds (exact at the rows); past the last row the value one day earlier (the last
    value when the table is shorter than that), before the first row the first value."""
    rows_s = np.round(table["hour"].to_numpy(dtype=float) * 3600).astype(np.int64)
    values = table[column].to_numpy(dtype=float)
    t = round(start_h * 3600) + round(step_h * 3600) * np.arange(n, dtype=np.int64)
    late = t > rows_s[-1]
    back = t - DAY_S * np.ceil((t - rows_s[-1]) / DAY_S).astype(np.int64)
    t = np.where(late, np.where(back >= rows_s[0], back, rows_s[-1]), t)
    return np.interp(t, rows_s, values)


# ----------------------------------------------------------------------------- reading


def read_table(
    path: Path | None, repeat: str | None, data: NetworkData, builtin: pd.DataFrame, run: Run
) -> tuple[pd.DataFrame, str, frozenset[str]]:
    """(table, repeat, given columns) of ``path`` (None: the built-in daily shapes), checked."""
    if path is None:
        return builtin, "daily", frozenset(PROFILE_COLUMNS)
    frame, parquet = _read_file(path)
    lines = Lines(path.name, parquet)
    time_column = _time_column(frame, path)
    bases = _unit_bases(data)
    renamed = _check_columns(frame, time_column, bases)
    if frame.empty:
        raise ProfileError(
            f"{FIELD}[{time_column}]",
            f"{path.name} has no rows",
            "give one row per time step, starting at or before the scenario start",
        )
    for column in frame.columns:
        if column != time_column:
            _check_values(frame, column, bases, lines)
    if time_column == "time":
        hours = datetime_hours(frame["time"], run, lines)
        repeat = time_repeat(repeat)
    else:
        hours = hour_values(frame["hour"], lines)
        repeat = hour_repeat(hours, repeat, run, path.name, lines)
    if repeat == "none":
        check_covers(hours, frame, time_column, run, path.name)
    table = _assemble(frame, hours, time_column, renamed, bases, builtin)
    return table, repeat, frozenset(renamed.values())


def _read_file(path: Path) -> tuple[pd.DataFrame, bool]:
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        frame = pd.read_parquet(path) if parquet else _read_csv(path)
    except ImportError as err:  # pragma: no cover - pyarrow is a dependency
        raise ProfileError(
            FIELD, f"{path} needs a Parquet engine ({err})", "pip install pyarrow"
        ) from None
    except (OSError, ValueError) as err:  # ParserError, EmptyDataError, ArrowInvalid ...
        kind = "Parquet" if parquet else "CSV"
        raise ProfileError(
            FIELD,
            f"{path} cannot be read as {kind} ({err})",
            "give a comma-separated text file with a header row, e.g. hour,load_pu,wind_pu,pv_pu"
            " (or a .parquet file)",
        ) from None
    if parquet and isinstance(frame.index, pd.DatetimeIndex) and "time" not in frame.columns:
        frame = frame.rename_axis("time").reset_index()
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, parquet


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV with numbers parsed exactly as written (pandas' default parser may be 1 ulp off)."""
    return pd.read_csv(path, float_precision="round_trip")


def _time_column(frame: pd.DataFrame, path: Path) -> str:
    present = [c for c in ("hour", "time") if c in frame.columns]
    if len(present) == 1:
        return present[0]
    state = "both an 'hour' and a 'time' column" if present else "no 'hour' or 'time' column"
    raise ProfileError(
        FIELD,
        f"the profile table {path.name} has {state}",
        "give exactly one time column: 'hour' (hours 0, 1, ..., 23 for a daily shape) or "
        "'time' (date-times such as 2016-06-01 00:15:00)",
    )


def _unit_bases(data: NetworkData) -> dict[str, tuple[float | None, bool]]:
    """Unit name -> (MW base, capped at its rating). The DSO loads' base is filled lazily."""
    bases: dict[str, tuple[float | None, bool]] = {}
    for mg in data.microgrids:
        bases[f"{mg.name}_wind"] = (mg.wind_p_rated_mw, True)
        bases[f"{mg.name}_load"] = (mg.load_p_peak_mw, False)
    for pv in data.pv:
        bases[pv.name] = (pv.p_rated_mw, True)
    buses = sorted(set(data.branches.from_bus_ieee) | set(data.branches.to_bus_ieee))
    for bus in buses:
        if bus != 1:
            bases[f"load_b{bus}"] = (None, False)
    return bases


@functools.cache
def dso_loads_mw() -> dict[str, float]:
    """Nominal MW of the IEEE 33 loads (pandapower's case33bw, as the grid builds them)."""
    import pandapower.networks as pn

    net = pn.case33bw()
    return {f"load_b{b + 1}": float(p) for b, p in zip(net.load.bus, net.load.p_mw, strict=True)}


def _check_columns(frame: pd.DataFrame, time_column: str, bases: dict) -> dict[str, str]:
    """File column -> table column (``_mw`` renamed to ``_pu``); unknown columns refused."""
    renamed: dict[str, str] = {}
    for column in frame.columns:
        if column == time_column:
            continue
        target = _table_name(column, bases)
        if target in renamed.values():
            other = next(c for c, t in renamed.items() if t == target)
            raise ProfileError(
                f"{FIELD}[{column}]",
                f"gives the same series as column {other}",
                "keep one of them (a series is either per unit or in MW)",
            )
        renamed[column] = target
    return renamed


def _table_name(column: str, bases: dict) -> str:
    if column in PROFILE_COLUMNS or column in ACTUAL_COLUMNS:
        return column
    stem, _, unit = column.rpartition("_")
    if unit in ("pu", "mw"):
        name = stem.removesuffix("_actual")
        actual = "_actual" if stem.endswith("_actual") else ""
        if name in bases:
            return f"{name}{actual}_pu"
        if name in ("load", "wind", "pv"):
            raise ProfileError(
                f"{FIELD}[{column}]",
                "a generic shape in MW has no meaning (the units differ in size)",
                f"give it per unit as {name}{actual}_pu, or in MW per unit as <unit>{actual}_mw",
            )
    units = [u for u in bases if not u.startswith("load_b")]
    loads = [u for u in bases if u.startswith("load_b")]
    raise ProfileError(
        f"{FIELD}[{column}]",
        "is not a known profile column",
        f"use hour or time, {', '.join(PROFILE_COLUMNS)} or <unit>_pu / <unit>_mw (and "
        f"<unit>_actual_pu / _mw, load_actual_pu ...) for a unit in: {', '.join(units)}, "
        f"{loads[0]} .. {loads[-1]}",
    )


def _unit_of(column: str) -> str:
    return column.rpartition("_")[0].removesuffix("_actual")


def _is_capped(column: str, bases: dict) -> bool:
    """Wind and PV are per unit of rating, so at most 1 (at most the rating in MW)."""
    unit = _unit_of(column)
    return unit in ("wind", "pv") or (unit in bases and bases[unit][1])


def _check_values(frame: pd.DataFrame, column: str, bases: dict, lines: Lines) -> None:
    field = f"{FIELD}[{column}]"
    if frame[column].dtype == bool:
        raise ProfileError(field, "holds true/false values", "give numbers")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype(float))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        cell = frame[column].iloc[row]
        shown = repr(cell) if isinstance(cell, str) else "an empty cell" if pd.isna(cell) else cell
        raise ProfileError(
            field,
            f"{lines(row)} has {shown}, not a finite number",
            "give a finite number in every cell (no NaN or empty cells)",
        )
    low = values < 0
    if low.any():
        row = int(np.flatnonzero(low.to_numpy())[0])
        raise ProfileError(
            field, f"{lines(row)} has {values.iloc[row]} (negative)", "give values >= 0"
        )
    if not _is_capped(column, bases):
        return
    in_mw = column.endswith("_mw")
    cap = bases[_unit_of(column)][0] if in_mw else 1.0
    if (values > cap).any():
        row = int(np.flatnonzero((values > cap).to_numpy())[0])
        fix = (
            f"give at most the unit's rating, {cap:g} MW (or raise the rating in the scenario)"
            if in_mw
            else "give wind and PV shapes per unit of rating, in [0, 1]"
        )
        unit = " MW" if in_mw else ""
        raise ProfileError(field, f"{lines(row)} has {values.iloc[row]}{unit} > {cap:g}", fix)


def _assemble(
    frame: pd.DataFrame,
    hours: np.ndarray,
    time_column: str,
    renamed: dict[str, str],
    bases: dict,
    builtin: pd.DataFrame,
) -> pd.DataFrame:
    """``hour`` (and ``time``), the generic shapes (missing ones from the built-in table at
    the rows' clock hours), then the file's unit and actual columns in per unit."""
    out = pd.DataFrame({"hour": hours})
    if time_column == "time":
        out["time"] = frame["time"].to_numpy()
    for column in PROFILE_COLUMNS:
        if column in frame.columns:
            out[column] = frame[column].astype(float).to_numpy()
        else:
            out[column] = np.interp(
                hours,
                builtin["hour"].to_numpy(dtype=float),
                builtin[column].to_numpy(dtype=float),
                period=24.0,
            )
    for column, target in renamed.items():
        if target in out.columns:
            continue
        values = frame[column].astype(float).to_numpy()
        if column.endswith("_mw"):
            values = values / _base_mw(bases, _unit_of(column))
        out[target] = values
    return out.reset_index(drop=True)


def _base_mw(bases: dict, unit: str) -> float:
    base = bases[unit][0]
    if base is None:
        base = dso_loads_mw()[unit]
    if base <= 0:
        raise ProfileError(
            f"{FIELD}[{unit}_mw]",
            f"{unit} has a rating of {base:g} MW, so MW values cannot be scaled",
            f"give {unit}_pu instead, or a rating > 0 in the scenario",
        )
    return base
