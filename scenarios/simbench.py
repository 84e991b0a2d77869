"""Convert SimBench profiles (the ``simbench`` package's offline data) to an mgcosim profile file.

Usage::

    python -m mgcosim.scenarios.simbench --code 1-MV-rural--0-sw --days 2 \\
        --start 2016-06-01 --out profiles.csv [--unit pu|MW] [--actual]

It writes a ``time``-indexed table (:mod:`scenarios.profiles`) at SimBench's 15-min
resolution for ``--days`` days from ``--start`` (SimBench's year is 2016), for the units of
the built-in IEEE 33 network data. Nothing is downloaded: ``simbench`` ships its data.

Mapping (SimBench profile type -> mgcosim unit):

* loads: the grid's load profile types (``<type>_pload``, per unit of each SimBench load's
  rated power, as mgcosim's ``load_pu`` is per unit of peak load), ordered by how many of the
  grid's loads use them (most first, then by name), are dealt round-robin to
  ``MG1_load, MG2_load, MG3_load, load_b2, ..., load_b33``;
* wind: the wind-park types ``WP*`` of the grid's static generators, same order, to
  ``MG1_wind, MG2_wind, MG3_wind``;
* PV: the ``PV*`` types, same order, to ``PV_b18, PV_b25, PV_b33``;
* the generic ``load_pu``, ``wind_pu``, ``pv_pu`` columns (used where a model reads one shape
  for all units, e.g. the mobile-storage placement) are the first type of each kind.

Other types (biomass, hydro, aggregated LV grids) are not used. A kind the grid has no type
for keeps mgcosim's built-in daily shape (its columns are left out, with a note on stderr);
``1-MV-rural--0-sw`` has all three. SimBench's renewables hold tiny negative values at night
(down to -1e-5 pu); they are clipped at 0. ``--unit MW`` writes ``<unit>_mw`` columns (per unit
times the built-in ratings: ``wind_p_rated_mw``, ``load_p_peak_mw``, ``p_rated_mw``, the IEEE 33
nominal loads); ``--actual`` writes the unit columns as actual series
(``<unit>_actual_pu`` / ``_mw``), realised without noise, with forecasts drawn by the
scenario's forecast-error model.
"""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mgcosim.networks.params import NetworkData, load_network_data

SIMBENCH_TIME_FORMAT = "%d.%m.%Y %H:%M"
DEFAULT_CODE = "1-MV-rural--0-sw"
KINDS = ("load", "wind", "pv")


class ConversionError(ValueError):
    """Arguments that cannot be converted (unknown code, dates outside the data ...)."""


@dataclass(frozen=True)
class Conversion:
    """The table written, and which SimBench profile type each unit got."""

    table: pd.DataFrame
    mapping: dict[str, str]  # mgcosim unit -> SimBench profile column


def project_units(data: NetworkData) -> dict[str, list[str]]:
    """The network's units by kind, in the order the SimBench types are dealt to them."""
    buses = sorted(set(data.branches.from_bus_ieee) | set(data.branches.to_bus_ieee))
    return {
        "load": [f"{mg.name}_load" for mg in data.microgrids] + [f"load_b{b}" for b in buses[1:]],
        "wind": [f"{mg.name}_wind" for mg in data.microgrids],
        "pv": [pv.name for pv in data.pv],
    }


def convert(
    code: str,
    start: pd.Timestamp,
    days: int,
    unit: str = "pu",
    actual: bool = False,
    data: NetworkData | None = None,
) -> Conversion:
    """The mgcosim profile table of SimBench grid ``code`` for ``days`` days from ``start``."""
    if days < 1:
        raise ConversionError(f"--days {days}: give a whole number of days >= 1")
    if unit not in ("pu", "MW"):
        raise ConversionError(f"--unit {unit!r}: use pu or MW")
    net = simbench_net(code)
    data = data or load_network_data()
    types = _profile_types(net)
    window = _window(net.profiles, start, days)
    units = project_units(data)
    suffix = ("_actual" if actual else "") + ("_mw" if unit == "MW" else "_pu")
    ratings = _ratings_mw(data) if unit == "MW" else {}
    out = pd.DataFrame({"time": window["time"].dt.strftime("%Y-%m-%d %H:%M:%S")})
    mapping: dict[str, str] = {}
    for kind in KINDS:
        if not types[kind]:
            print(
                f"note: SimBench grid {code} has no {kind} profile; the {kind} units keep the "
                "built-in daily shape",
                file=sys.stderr,
            )
            continue
        out[f"{kind}_pu"] = window[types[kind][0]].to_numpy()
        for i, name in enumerate(units[kind]):
            column = types[kind][i % len(types[kind])]
            mapping[name] = column
            values = window[column].to_numpy()
            out[f"{name}{suffix}"] = values * ratings[name] if unit == "MW" else values
    return Conversion(out, mapping)


@functools.cache
def simbench_net(code: str):
    """The SimBench grid ``code`` with its profiles (read once per process, from the package)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import simbench
        except ImportError as err:
            raise ConversionError(
                "the simbench package is not installed: pip install 'mgcosim[simbench]'"
            ) from err

        if code not in _all_codes(simbench):
            raise ConversionError(
                f"--code {code!r} is not a SimBench code; e.g. {DEFAULT_CODE} or "
                "1-LV-rural1--0-sw (simbench.collect_all_simbench_codes() lists them)"
            )
        return simbench.get_simbench_net(code)


def _all_codes(simbench) -> set[str]:
    return set(simbench.collect_all_simbench_codes())


def _profile_types(net) -> dict[str, list[str]]:
    """Profile columns by kind, most used first (then by name)."""

    def ordered(names: pd.Series) -> list[str]:
        counts = names.value_counts()
        return sorted(counts.index, key=lambda t: (-counts[t], t))

    sgen = net.sgen.profile.dropna().astype(str)
    return {
        "load": [f"{t}_pload" for t in ordered(net.load.profile.dropna().astype(str))],
        "wind": ordered(sgen[sgen.str.startswith("WP")]),
        "pv": ordered(sgen[sgen.str.startswith("PV")]),
    }


def _window(profiles: dict, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Load and renewable profiles, one row per 15 min, in [start, start + days)."""
    load = profiles["load"].set_index("time")
    renewables = profiles["renewables"].set_index("time")
    both = load.join(renewables, how="inner")
    both.index = pd.to_datetime(both.index, format=SIMBENCH_TIME_FORMAT)
    end = start + pd.Timedelta(days=days)
    if start < both.index[0] or end - pd.Timedelta(minutes=15) > both.index[-1]:
        raise ConversionError(
            f"--start {start.date()} --days {days}: SimBench's profiles run from "
            f"{both.index[0]} to {both.index[-1]}; choose dates inside them"
        )
    window = both[(both.index >= start) & (both.index < end)]
    return window.clip(lower=0.0).rename_axis("time").reset_index()


def _ratings_mw(data: NetworkData) -> dict[str, float]:
    from mgcosim.scenarios.profiles import dso_loads_mw

    ratings = dict(dso_loads_mw())
    for mg in data.microgrids:
        ratings[f"{mg.name}_wind"] = mg.wind_p_rated_mw
        ratings[f"{mg.name}_load"] = mg.load_p_peak_mw
    for pv in data.pv:
        ratings[pv.name] = pv.p_rated_mw
    return ratings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mgcosim.scenarios.simbench",
        description="Write SimBench profiles as an mgcosim profile file (CSV or Parquet).",
    )
    parser.add_argument("--code", default=DEFAULT_CODE, help=f"SimBench code ({DEFAULT_CODE})")
    parser.add_argument("--days", type=int, default=2, help="days to convert (2)")
    parser.add_argument("--start", default="2016-06-01", help="first day, in 2016 (2016-06-01)")
    parser.add_argument("--unit", choices=("pu", "MW"), default="pu", help="unit columns' unit")
    parser.add_argument("--actual", action="store_true", help="write actual series")
    parser.add_argument("--out", required=True, type=Path, help="output .csv or .parquet")
    args = parser.parse_args(argv)
    try:
        start = pd.Timestamp(args.start)
        result = convert(args.code, start, args.days, args.unit, args.actual)
    except (ConversionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        if args.out.suffix.lower() in (".parquet", ".pq"):
            result.table.to_parquet(args.out, index=False)
        else:
            result.table.to_csv(args.out, index=False)
    except OSError as err:
        print(f"error: --out {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    n_units = len(result.mapping)
    print(f"wrote {args.out}: {len(result.table)} rows x {n_units} units from {args.code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
