"""The scenario's network data: the [dso], [microgrids.*] and [pv.*] overrides, the microgrid model.

Applies the overrides to the built-in data of ``networks/data`` and validates the result: each
unit's parameters, the tariff and the buses. A bad built-in value is reported against its CSV
file, a bad override against the scenario field (or the overridden partner of the field checked,
e.g. ``mt_p_max_mw`` for ``mt_p_min_mw``). Also checks ``microgrid_model = "internal"`` against
the internal microgrid networks, and gives :func:`ieee_buses`, the network's IEEE bus numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgcosim.networks.microgrid_internal import MicrogridDataError, load_microgrid_networks
from mgcosim.networks.params import NetworkData, ParameterError, data_file, with_overrides
from mgcosim.scenarios.read_values import (
    Invalid,
    as_choice,
    as_integer,
    as_number,
    as_string,
    as_table,
    check_keys,
)
from mgcosim.scenarios.settings import NETWORKS

MICROGRID_MODELS = ("lumped", "internal")
# When a parameter check names a field the scenario did not override, the partner it was
# compared with may be the one that was: name that instead.
_PARTNERS = {
    "mt_p_min_mw": ("mt_p_max_mw",),
    "ess_e_min_mwh": ("ess_e_max_mwh", "ess_e_init_mwh"),
    "ess_e_init_mwh": ("ess_e_min_mwh", "ess_e_max_mwh"),
    "v_min_pu": ("v_max_pu",),
}


def read_data(raw: dict, base: NetworkData, data_dir: Path) -> NetworkData:
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
    tables = as_table(tables, where)
    names = [u.name for u in units]
    check_keys(tables, names, where, note=" (names of the built-in units)")
    return tuple(
        _override(tables[u.name], u, f"{where}.{u.name}") if u.name in tables else u for u in units
    )


def _override(table: Any, params: object, where: str) -> object:
    table = as_table(table, where)
    types = {f.name: f.type for f in fields(params) if f.name != "name"}
    note = " (a unit's name is its table key)" if "name" in table else ""
    check_keys(table, types, where, note)
    for key, value in table.items():
        check = {"int": as_integer, "float": as_number, "str": as_string}[types[key]]
        check(value, f"{where}.{key}")
    try:
        return with_overrides(params, table)
    except ParameterError as err:
        raise Invalid(f"{where}.{err.field}", err.message, err.fix) from None


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


def _param_invalid(where: str, err: ParameterError, overrides: dict, data_dir: Path) -> Invalid:
    """The bad field in the scenario when it was overridden there, else in its data file."""
    partners = [f for f in _PARTNERS.get(err.field, ()) if f in overrides]
    if err.field in overrides or partners:
        field = err.field if err.field in overrides else partners[0]
        return Invalid(f"{where}.{field}", err.message, err.fix)
    table, _, unit = where.partition(".")
    row = f"{unit}." if unit else ""
    fix = f"{err.fix} (in the file, or override it in [{where}])"
    return Invalid(f"{row}{err.field}", err.message, fix, data_file(data_dir, f"{table}.csv"))


def _check_tariff(tariff: pd.DataFrame, file: Path) -> None:
    """Prices finite and >= 0 for each of the hours 0..23."""
    if sorted(tariff.hour) != list(range(24)):
        raise Invalid("hour", "does not list the hours 0..23 once each", "give 24 rows", file)
    for column in ("buy_price_cny_per_mwh", "sell_price_cny_per_mwh"):
        values = pd.to_numeric(tariff[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise Invalid(
                column,
                f"line {row + 2} has {tariff[column].iloc[row]}",
                "give a finite price >= 0 CNY/MWh",
                file,
            )


def ieee_buses(data: NetworkData) -> list[int]:
    return sorted(set(data.branches.from_bus_ieee) | set(data.branches.to_bus_ieee))


def _check_buses(data: NetworkData, raw: dict) -> None:
    buses = ieee_buses(data)
    valid = f"use an IEEE bus number in {buses[0]}..{buses[-1]}"
    for where, unit in [("microgrids", u) for u in data.microgrids] + [("pv", u) for u in data.pv]:
        if unit.bus_ieee not in buses:
            raise Invalid(
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
            raise Invalid(
                f"microgrids.{moved}.bus_ieee",
                f"{other} and {mg.name} are both at bus {mg.bus_ieee}",
                f"put each microgrid on its own bus (taken: {taken})",
            )


# ----------------------------------------------------------------------------- microgrid model


def read_microgrid_model(value: Any, data: NetworkData, network: str) -> str:
    """``"lumped"`` or ``"internal"``; the internal networks must agree with ``data``."""
    model = as_choice(value, "microgrid_model", MICROGRID_MODELS)
    if model == "internal" and network != "ieee33":
        raise Invalid(
            "microgrid_model",
            f'network {network!r} has no internal microgrid networks (only "ieee33" has)',
            'use microgrid_model = "lumped" with this network',
        )
    if model == "internal":
        try:
            load_microgrid_networks(data, NETWORKS[network])
        except MicrogridDataError as err:
            raise Invalid(
                "microgrid_model",
                f"the internal networks do not match the microgrid data ({err})",
                'use microgrid_model = "lumped" with these [microgrids] overrides, or make '
                "networks/data/mg_internal_*.csv add up to them",
            ) from None
    return model
