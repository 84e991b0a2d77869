"""The planner tables of a scenario file: [restoration], [admm], [communication] and [mess].

Each reader checks its table's keys and values and returns its settings (:mod:`scenarios.settings`,
or :class:`controllers.comms.CommunicationSettings`), refusing combinations that cannot run, e.g.
``agents = "mosaik"`` with faults or a ``[communication]`` table without the ADMM. The mobile
storage placement also checks ``networks/data/mess.csv`` (a placed unit needs ratings) and the
given buses; :func:`mess_units` places the units of that file at given buses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from mgcosim.controllers.comms import MISSING_REPLY, CommunicationSettings, LinkSettings
from mgcosim.networks.params import NetworkData, ParameterError
from mgcosim.scenarios.read_network import ieee_buses
from mgcosim.scenarios.read_values import (
    Invalid,
    as_choice,
    as_integer,
    as_number,
    as_seconds,
    as_table,
    check_keys,
    read_seed,
)
from mgcosim.scenarios.settings import DEFAULT_SEED, ADMMOptions, MessSettings, RestorationSettings

ADMM_AGENTS = ("in_process", "mosaik")
RESTORATION_METHODS = ("centralised", "admm")
MESS_PLACEMENTS = ("none", "given", "robust", "deterministic")


def read_restoration(value: Any, physical_s: int) -> RestorationSettings:
    table = as_table(value, "restoration")
    if "time_limit_s" in table:
        raise Invalid(
            "restoration.time_limit_s",
            "a wall-clock limit makes the plans depend on machine load",
            "remove it; mip_node_limit (default 100) bounds a solve deterministically",
        )
    check_keys(table, [f.name for f in fields(RestorationSettings)], "restoration")
    default = RestorationSettings()
    method = as_choice(
        table.get("method", default.method), "restoration.method", RESTORATION_METHODS
    )
    step_s = as_seconds(table.get("step_min", physical_s / 60), "restoration.step_min", 60)
    if step_s <= 0 or step_s % physical_s:
        raise Invalid(
            "restoration.step_min",
            f"{step_s / 60:g} min is not a positive multiple of the physical step "
            f"{physical_s / 60:g} min",
            f"use a multiple of {physical_s / 60:g} min (default: the physical step)",
        )
    margin_h = as_number(table.get("margin_h", default.margin_h), "restoration.margin_h")
    if margin_h < 0:
        raise Invalid("restoration.margin_h", f"is {margin_h}", "give hours >= 0 (default 1)")
    periods = as_integer(table.get("max_periods", default.max_periods), "restoration.max_periods")
    if periods < 1:
        raise Invalid("restoration.max_periods", f"is {periods}", "give a whole number >= 1")
    gap = as_number(table.get("mip_rel_gap", default.mip_rel_gap), "restoration.mip_rel_gap")
    if not 0 <= gap < 1:
        raise Invalid("restoration.mip_rel_gap", f"is {gap}", "give a gap in [0, 1), e.g. 0.001")
    nodes = as_integer(
        table.get("mip_node_limit", default.mip_node_limit), "restoration.mip_node_limit"
    )
    if nodes < 1:
        raise Invalid("restoration.mip_node_limit", f"is {nodes}", "give a whole number >= 1")
    fine_h = as_number(table.get("fine_h", default.fine_h), "restoration.fine_h")
    if not fine_h * 3600 >= step_s:
        raise Invalid(
            "restoration.fine_h",
            f"is {fine_h:g} h, shorter than one restoration step ({step_s / 60:g} min)",
            "give at least one step, e.g. 1.0 (default)",
        )
    look_s = as_seconds(
        table.get("look_ahead_step_min", default.look_ahead_step_min),
        "restoration.look_ahead_step_min",
        60,
    )
    if look_s <= 0 or look_s % step_s:
        raise Invalid(
            "restoration.look_ahead_step_min",
            f"{look_s / 60:g} min is not a positive multiple of the restoration step "
            f"{step_s / 60:g} min",
            "use a multiple of the restoration step, e.g. 60 (default)",
        )
    return RestorationSettings(
        method, step_s / 60, float(margin_h), periods, float(gap), nodes, fine_h, look_s / 60
    )


def read_admm(value: Any, controller: str, has_faults: bool) -> ADMMOptions:
    table = as_table(value, "admm")
    check_keys(table, [f.name for f in fields(ADMMOptions)], "admm")
    agents = as_choice(table.get("agents", "in_process"), "admm.agents", ADMM_AGENTS)
    reference = table.get("reference", True)
    if not isinstance(reference, bool):
        raise Invalid("admm.reference", f"is {reference!r}", "write true or false")
    if agents == "mosaik":
        if controller != "admm":
            raise Invalid(
                "admm.agents",
                f'"mosaik" runs the bilevel ADMM, but controller is "{controller}"',
                'set controller = "admm", or remove admm.agents',
            )
        if reference:
            raise Invalid(
                "admm.reference",
                "the centralised reference needs every microgrid's parameters in the DSO's "
                'process, which agents = "mosaik" keeps apart',
                'set reference = false in [admm] (or use agents = "in_process")',
            )
        if has_faults:
            raise Invalid(
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


def read_communication(
    raw: dict, controller: str, data: NetworkData
) -> CommunicationSettings | None:
    """The optional [communication] table (message faults of the ADMM, controllers.comms)."""
    if "communication" not in raw:
        return None
    table = as_table(raw["communication"], "communication")
    check_keys(table, COMMUNICATION_KEYS, "communication")
    if controller != "admm":
        raise Invalid(
            "communication",
            f'models the ADMM\'s messages, but controller is "{controller}"',
            'set controller = "admm", or remove the [communication] table',
        )
    default = _read_link(table, "communication", LinkSettings())
    names = [mg.name for mg in data.microgrids]
    overrides = {}
    for name, link in as_table(table.get("microgrids", {}), "communication.microgrids").items():
        where = f"communication.microgrids.{name}"
        if name not in names:
            raise Invalid(
                where, "is not a microgrid of the network", f"use one of: {', '.join(names)}"
            )
        overrides[name] = _read_link(as_table(link, where), where, default)
    if "seed" in table:
        seed = _nonnegative_int(table["seed"], "communication.seed")
    else:
        seed = read_seed(raw.get("seed", DEFAULT_SEED))
    deadline_s = as_number(
        table.get("deadline_s", CommunicationSettings.deadline_s), "communication.deadline_s"
    )
    if deadline_s <= 0:
        raise Invalid("communication.deadline_s", f"is {deadline_s}", "give seconds > 0")
    attempts = as_integer(
        table.get("finish_attempts", CommunicationSettings.finish_attempts),
        "communication.finish_attempts",
    )
    if attempts < 1:
        raise Invalid("communication.finish_attempts", f"is {attempts}", "give an integer >= 1")
    missing = as_choice(
        table.get("missing_reply", CommunicationSettings.missing_reply),
        "communication.missing_reply",
        MISSING_REPLY,
    )
    return CommunicationSettings(seed, default, overrides, float(deadline_s), attempts, missing)


def _read_link(table: dict, where: str, base: LinkSettings) -> LinkSettings:
    """A link's loss probability and delays (keys missing from ``table`` as in ``base``)."""
    if where != "communication":
        check_keys(table, LINK_KEYS, where)
    loss = as_number(table.get("loss_prob", base.loss_prob), f"{where}.loss_prob")
    if not 0 <= loss <= 1:
        raise Invalid(f"{where}.loss_prob", f"is {loss}", "give a probability in [0, 1]")
    delays = {}
    for key in ("delay_s", "jitter_s"):
        value = as_number(table.get(key, getattr(base, key)), f"{where}.{key}")
        if value < 0:
            raise Invalid(f"{where}.{key}", f"is {value} (negative)", "give seconds >= 0")
        delays[key] = float(value)
    return LinkSettings(float(loss), **delays)


def _nonnegative_int(value: Any, field: str) -> int:
    number = as_integer(value, field)
    if number < 0:
        raise Invalid(field, f"is {number} (negative)", "give a whole number >= 0")
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
        raise Invalid(err.field, err.message, err.fix, data_files.MESS_FILE) from None
    for name, unit in (("p_max_mw", "MW"), ("e_max_mwh", "MWh")):
        if getattr(params, name) <= 0:
            raise Invalid(
                name,
                f"is {getattr(params, name)}, but a placed mobile storage unit needs a rating",
                f"give a rating > 0 {unit}, or set mess.placement = 'none' in the scenario",
                data_files.MESS_FILE,
            )
    return params


def read_mess(value: Any, data: NetworkData) -> MessSettings:
    table = as_table(value, "mess")
    check_keys(table, [f.name for f in fields(MessSettings)], "mess")
    default = "given" if "buses" in table else "none"
    placement = as_choice(table.get("placement", default), "mess.placement", MESS_PLACEMENTS)
    if placement != "given":
        if "buses" in table:
            raise Invalid(
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
        raise Invalid(
            "mess.buses", f"is {value!r}", "give a non-empty list of IEEE buses, e.g. [23]"
        )
    buses = [as_integer(b, f"mess.buses[{i}]") for i, b in enumerate(value)]
    allowed = set(params.candidate_buses_ieee) & set(ieee_buses(data))
    for i, bus in enumerate(buses):
        if bus not in allowed:
            raise Invalid(
                f"mess.buses[{i}]",
                f"bus {bus} cannot host a mobile storage unit",
                f"use a candidate bus of networks/data/mess.csv: {min(allowed)}..{max(allowed)}",
            )
    if len(set(buses)) != len(buses):
        raise Invalid("mess.buses", f"{buses} names a bus twice", "at most one unit per bus")
    if len(buses) > params.fleet_size_units:
        raise Invalid(
            "mess.buses",
            f"{len(buses)} units but the fleet has {params.fleet_size_units}",
            f"place at most {params.fleet_size_units} units (fleet_size_units in mess.csv)",
        )
    return tuple(sorted(buses))
