"""The ``[[faults]]`` tables of a scenario file: outages of a branch or of the main grid.

Each fault names its branch by IEEE number (``branch = 12``) or by its two end buses
(``buses = [12, 13]``), or is ``kind = "main_grid"`` without either; its start lies within the
run and its repair time is positive; names are unique. Returns
:class:`scenarios.settings.FaultEvent` values in whole seconds after the scenario start.
"""

from __future__ import annotations

from typing import Any

from mgcosim.networks.params import NetworkData
from mgcosim.scenarios.read_network import ieee_buses
from mgcosim.scenarios.read_values import (
    Invalid,
    as_choice,
    as_integer,
    as_seconds,
    as_string,
    check_keys,
)
from mgcosim.scenarios.settings import FaultEvent

FAULT_KINDS = ("branch", "main_grid")
FAULT_KEYS = ("name", "kind", "branch", "buses", "start_h", "repair_h")


def read_faults(value: Any, duration_s: int, data: NetworkData) -> tuple[FaultEvent, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(
            "faults",
            f"is {value!r}, not a list of tables",
            "write each fault as its own [[faults]] table",
        )
    events = [_read_fault(item, i, duration_s, data) for i, item in enumerate(value)]
    names: set[str] = set()
    for i, event in enumerate(events):
        if event.name in names:
            raise Invalid(
                f"faults[{i}].name", f"{event.name!r} is used twice", "give each fault its own name"
            )
        names.add(event.name)
    return tuple(events)


def _read_fault(item: dict, i: int, duration_s: int, data: NetworkData) -> FaultEvent:
    where = f"faults[{i}]"
    check_keys(item, FAULT_KEYS, where)
    name = as_string(item.get("name", f"fault_{i + 1}"), f"{where}.name")
    kind = as_choice(item.get("kind", "branch"), f"{where}.kind", FAULT_KINDS)
    branch = _fault_branch(item, kind, where, data)
    start_s = as_seconds(
        _required(item, "start_h", where, "hours after the start"), f"{where}.start_h", 3600
    )
    if not 0 <= start_s < duration_s:
        raise Invalid(
            f"{where}.start_h",
            f"{item['start_h']} h lies outside the scenario",
            f"give a start in [0, {duration_s / 3600:g}) h",
        )
    repair_s = as_seconds(
        _required(item, "repair_h", where, "hours until repaired"), f"{where}.repair_h", 3600
    )
    if repair_s <= 0:
        raise Invalid(
            f"{where}.repair_h", f"is {item['repair_h']}, not positive", "give a repair time > 0 h"
        )
    return FaultEvent(name, kind, branch, start_s, repair_s)


def _required(item: dict, key: str, where: str, meaning: str) -> Any:
    if key not in item:
        raise Invalid(f"{where}.{key}", "is missing", f"add {key} = <{meaning}>")
    return item[key]


def _fault_branch(item: dict, kind: str, where: str, data: NetworkData) -> int | None:
    has_branch, has_buses = "branch" in item, "buses" in item
    if kind == "main_grid":
        if has_branch or has_buses:
            key = "branch" if has_branch else "buses"
            raise Invalid(
                f"{where}.{key}",
                "is given for a main_grid fault",
                'remove it, or set kind = "branch"',
            )
        return None
    if has_branch == has_buses:
        state = "both given" if has_branch else "both missing"
        raise Invalid(
            f"{where}.branch",
            f"branch and buses are {state}",
            "give exactly one: branch = <IEEE branch> or buses = [a, b]",
        )
    if has_branch:
        return _branch_number(item["branch"], f"{where}.branch", data)
    return _branch_of_buses(item["buses"], f"{where}.buses", data)


def _branch_number(value: Any, field: str, data: NetworkData) -> int:
    branch = as_integer(value, field)
    valid = sorted(int(b) for b in data.branches.branch_ieee)
    if branch not in valid:
        raise Invalid(
            field,
            f"branch {branch} does not exist",
            f"use an IEEE branch number in {valid[0]}..{valid[-1]}",
        )
    return branch


def _branch_of_buses(value: Any, field: str, data: NetworkData) -> int:
    if not isinstance(value, list) or len(value) != 2:
        raise Invalid(field, f"is {value!r}", "give two IEEE bus numbers, e.g. buses = [12, 13]")
    a, b = (as_integer(v, field) for v in value)
    buses = ieee_buses(data)
    for bus in (a, b):
        if bus not in buses:
            raise Invalid(
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
        raise Invalid(
            field,
            f"no branch joins buses {a} and {b}",
            f"give two adjacent buses (bus {a} is joined to {near}) or use branch = N",
        )
    return int(hit.branch_ieee.iloc[0])
