"""The data of the MESS pre-positioning model (seed 002): the event, the case, the decisions.

:class:`Event` (damaged branches, main grid kept or lost; :data:`DEFAULT_EVENT` is the seed's),
:class:`RobustCase`, everything the models need per period, made from the network data and the
hourly shapes by :func:`robust_case` and checked by :func:`validate_case`; :class:`FirstStage`,
a here-and-now decision (placement, switch states, islands), and :func:`pv_realisation`, the PV
available for given deviation indicators. Plain data, no model: the model is
:mod:`controllers.robust_model`, its formulation and the recourse solve :mod:`controllers.robust`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mgcosim.controllers.dso import DSOData, unknown_branches
from mgcosim.networks.params import DATA_DIR, MessParams, NetworkData, load_mess_params, q_per_p

PROFILES_FILE = DATA_DIR / "profiles_default.csv"


class RobustInputError(ValueError):
    """Inputs of the robust model that do not fit the network or each other."""


# --- data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """The forecast extreme event: damaged branches (open) and whether the main grid stays."""

    damaged_branches: frozenset[int]
    main_grid_available: bool


# Seed 003's event on this network (branches 12: 12-13 and 22: 3-23 damaged, main grid lost)
# with tie 37 (25-29) damaged too: the microgrids (buses 2, 11, 27), the PV and the MESS are
# the only sources, and the lateral 23-25 (two 0.42 MW tier-2 loads and PV_b25) can then be
# served only by MESS placed inside it, so where the units go matters.
DEFAULT_EVENT = Event(frozenset({12, 22, 37}), main_grid_available=False)


@dataclass(frozen=True)
class RobustCase:
    """Everything the models need: network, event, horizon (arrays per period, MW)."""

    dd: DSOData  # buses, branches, root, voltage band, switching cost, substation limit
    mess: MessParams
    event: Event
    dt_h: float
    demand_mw: dict[int, np.ndarray]  # per IEEE bus
    demand_mvar: dict[int, np.ndarray]
    tier: dict[int, int]  # per IEEE bus
    pv_forecast_mw: dict[str, np.ndarray]
    pv_q_ratio: dict[str, float]  # |q| <= ratio * p
    dg_p_max_mw: dict[str, float]  # per microgrid (at dd.mg_bus)
    dg_q_max_mvar: dict[str, float]
    switchable: frozenset[int]  # branches that may leave their normal state

    @property
    def n_periods(self) -> int:
        return len(next(iter(self.demand_mw.values())))

    @property
    def pv_dev_mw(self) -> dict[str, np.ndarray]:
        return {k: self.mess.pv_dev_frac * v for k, v in self.pv_forecast_mw.items()}

    @property
    def budget(self) -> int:
        return self.mess.pv_budget_per_period

    def shed_cost(self, bus: int) -> float:
        """CNY per MWh of load shed at ``bus``."""
        return self.mess.shed_cost_cny_per_mwh[self.tier.get(bus, 3)]

    def normal_closed(self, line: int) -> bool:
        return not next(b.is_tie for b in self.dd.branches if b.ieee == line)


def hourly_shapes(
    start_hour: float, n_periods: int, profiles: pd.DataFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``load_pu`` and ``pv_pu`` at start_hour, start_hour + 1, ... (periodic over 24 h,
    interpolated between the table's hours; ``profiles_default.csv`` unless given)."""
    table = profiles if profiles is not None else pd.read_csv(PROFILES_FILE)
    hours = start_hour + np.arange(n_periods, dtype=float)
    load_pu = np.interp(hours, table["hour"], table["load_pu"], period=24.0)
    pv_pu = np.interp(hours, table["hour"], table["pv_pu"], period=24.0)
    return load_pu, pv_pu


def robust_case(
    dd: DSOData,
    data: NetworkData,
    mess: MessParams | None = None,
    event: Event = DEFAULT_EVENT,
    *,
    start_hour: float = 10.0,
    n_periods: int = 4,
    profiles: pd.DataFrame | None = None,
    switchable: frozenset[int] | None = None,
) -> RobustCase:
    """The IEEE 33 case: nominal loads and PV ratings times the hourly shapes from
    ``start_hour`` (``profiles_default.csv`` unless ``profiles`` is given), hourly periods."""
    mess = mess or load_mess_params()
    load_pu, pv_pu = hourly_shapes(start_hour, n_periods, profiles)
    case = RobustCase(
        dd=dd,
        mess=mess,
        event=event,
        dt_h=1.0,
        demand_mw={b: p * load_pu for b, p in dd.load_p_nom_mw.items()},
        demand_mvar={b: q * load_pu for b, q in dd.load_q_nom_mvar.items()},
        tier={b: data.tier_of(b) for b in dd.buses},
        pv_forecast_mw={pv.name: pv.p_rated_mw * pv_pu for pv in data.pv},
        pv_q_ratio={pv.name: q_per_p(pv.pf_min) for pv in data.pv},
        dg_p_max_mw={mg.name: mg.mt_p_max_mw for mg in data.microgrids},
        dg_q_max_mvar={mg.name: mg.pcc_p_max_mw for mg in data.microgrids},
        switchable=frozenset(b.ieee for b in dd.branches) if switchable is None else switchable,
    )
    validate_case(case)
    return case


def validate_case(case: RobustCase) -> None:
    """Raise :class:`RobustInputError` on the first input that does not fit."""
    dd, mess = case.dd, case.mess
    branch_sets = {"damaged_branches": case.event.damaged_branches, "switchable": case.switchable}
    for name, numbers in branch_sets.items():
        if unknown := unknown_branches(dd, numbers):
            raise RobustInputError(f"{name}: unknown IEEE branches {unknown}")
    if unknown := sorted(set(mess.candidate_buses_ieee) - set(dd.buses)):
        raise RobustInputError(f"candidate_buses_ieee: unknown IEEE buses {unknown}")
    if len(set(mess.candidate_buses_ieee)) != len(mess.candidate_buses_ieee):
        raise RobustInputError("candidate_buses_ieee: a bus is listed twice")
    if set(case.dg_p_max_mw) != set(dd.mg_bus) or set(case.pv_forecast_mw) - set(dd.pv_bus):
        raise RobustInputError("DG and PV names must be those of the network data (dd)")
    if not case.demand_mw or case.dt_h <= 0 or case.n_periods < 1:
        raise RobustInputError(f"dt_h {case.dt_h}, {case.n_periods} periods: need > 0, >= 1")
    for name, values in [*case.demand_mw.items(), *case.pv_forecast_mw.items()]:
        if len(values) != case.n_periods or np.any(np.asarray(values) < 0):
            raise RobustInputError(f"{name}: need {case.n_periods} values >= 0")


# --- first-stage decisions -----------------------------------------------------------------
@dataclass(frozen=True)
class FirstStage:
    """A here-and-now decision: placement, switch states and the islands they make."""

    mess_buses: frozenset[int]
    closed_branches: frozenset[int]
    live_branches: frozenset[int]  # closed and energised
    energised_buses: frozenset[int]
    source_buses: frozenset[int]  # grid-forming: substation, DG, MESS (one per island)
    placement_cost_cny: float
    switch_actions: int
    switch_cost_cny: float

    @property
    def cost_cny(self) -> float:
        return self.placement_cost_cny + self.switch_cost_cny


def pv_realisation(case: RobustCase, u: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PV available per unit and period for deviation indicators u (0 .. 1)."""
    dev = case.pv_dev_mw
    return {
        k: f - dev[k] * np.asarray(u.get(k, 0.0), float) for k, f in case.pv_forecast_mw.items()
    }
