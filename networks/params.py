"""Parameter data of the network, its microgrids and prices, read from ``networks/data``.

Every quantity carries its unit in its name. Sign conventions, used everywhere:

* ``p_mw`` of a generator (``sgen``) is generation (> 0 injects into the grid);
* ``p_mw`` of a load is consumption; ``p_mw`` of a storage is charging (> 0 charges),
  as in pandapower's element conventions;
* a microgrid's exchange ``p_exchange_mw`` is its import from the distribution network
  through its PCC (> 0: the microgrid buys, < 0: it sells).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).parent / "data"


MG_LOAD_TIER = 2  # a lumped microgrid's own load: supplied by its own units, shed only for
# critical DSO loads (the restoration values it at this tier; the grid records it there)


def q_per_p(pf: float) -> float:
    """Reactive power per unit of active power at power factor ``pf``: tan(acos pf)."""
    return math.tan(math.acos(pf)) if pf < 1 else 0.0


class ParameterError(ValueError):
    """A parameter value that is impossible; ``field`` names it, ``fix`` says what is valid."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        super().__init__(f"{field}: {message}. Fix: {fix}")
        self.field = field
        self.message = message
        self.fix = fix


# Microgrid fields that must be > 0 (field, why, fix): the models divide by them.
MICROGRID_POSITIVE = (
    (
        "pcc_x_ohm",
        "the power flow divides by the PCC line's reactance",
        "give a reactance > 0 ohm, e.g. 0.05",
    ),
    (
        "pcc_max_i_ka",
        "branch loading is the PCC line's current divided by this rating",
        "give a current rating > 0 kA, e.g. 0.25 (to stop exchange set pcc_p_max_mw = 0)",
    ),
    (
        "wind_p_rated_mw",
        "wind forecast errors are per unit of this rating",
        "give a rating > 0 MW; for a microgrid without wind keep a rating and set its "
        "profile column <MG>_wind_pu to 0",
    ),
)
VM_SETPOINT_RANGE_PU = (0.9, 1.1)  # voltage set-points of the substation and grid formers


@dataclass(frozen=True)
class MicrogridParams:
    """One wind-storage microgrid behind its point of common coupling (PCC)."""

    name: str
    bus_ieee: int
    pcc_r_ohm: float
    pcc_x_ohm: float
    pcc_max_i_ka: float
    pcc_p_max_mw: float
    grid_buy_max_mw: float
    grid_sell_max_mw: float
    mt_p_min_mw: float
    mt_p_max_mw: float
    mt_ramp_mw_per_h: float
    mt_cost_cny_per_mwh: float
    mt_pf: float
    ess_p_ch_max_mw: float
    ess_p_dis_max_mw: float
    ess_e_min_mwh: float
    ess_e_max_mwh: float
    ess_e_init_mwh: float
    ess_eta_ch: float
    ess_eta_dis: float
    ess_deg_cost_cny_per_mwh: float
    wind_p_rated_mw: float
    wind_pf: float
    load_p_peak_mw: float
    load_pf: float
    gf_vm_pu: float  # voltage set-point when the microgrid forms an island (grid-forming)
    # apparent-power limit of the exchange (P, Q) at the PCC; inf: only the |P| limits bind
    pcc_s_max_mva: float = math.inf

    def validate(self) -> None:
        """Raise :class:`ParameterError` on the first impossible value."""
        for name in (f.name for f in fields(self) if f.type == "float" and f.name != "mt_pf"):
            require(not getattr(self, name) < 0, name, f"is {getattr(self, name)} (negative)")
        for name, reason, fix in MICROGRID_POSITIVE:
            value = getattr(self, name)
            require(not value <= 0, name, f"is {value}, but {reason}", fix)
        for name in ("mt_pf", "wind_pf", "load_pf", "ess_eta_ch", "ess_eta_dis"):
            value = getattr(self, name)
            require(0 < value <= 1, name, f"is {value}", "use a value in (0, 1]")
        _check_vm_setpoint("gf_vm_pu", self.gf_vm_pu)
        lo, hi, e0 = self.ess_e_min_mwh, self.ess_e_max_mwh, self.ess_e_init_mwh
        p_min, p_max = self.mt_p_min_mw, self.mt_p_max_mw
        mt = f"mt_p_min_mw {p_min} exceeds mt_p_max_mw {p_max}"
        require(not p_min > p_max, "mt_p_min_mw", mt, "make mt_p_min_mw <= mt_p_max_mw")
        soc_fix = "make ess_e_min_mwh <= ess_e_init_mwh <= ess_e_max_mwh"
        order = f"SOC bounds out of order: ess_e_min_mwh {lo} > ess_e_max_mwh {hi}"
        require(lo <= hi, "ess_e_min_mwh", order, soc_fix)
        outside = f"ess_e_init_mwh {e0} lies outside [{lo}, {hi}]"
        require(lo <= e0 <= hi, "ess_e_init_mwh", outside, soc_fix)


@dataclass(frozen=True)
class PVParams:
    """A DSO-level photovoltaic unit."""

    name: str
    bus_ieee: int
    p_rated_mw: float
    pf_min: float

    def validate(self) -> None:
        require(not self.p_rated_mw < 0, "p_rated_mw", f"is {self.p_rated_mw} (negative)")
        require(
            self.p_rated_mw != 0,
            "p_rated_mw",
            f"is {self.p_rated_mw}, but PV forecast errors are clipped to [0, rating]",
            "give a rating > 0 MW; to switch the unit off keep a rating and set its "
            "profile column <unit>_pu to 0",
        )
        require(0 < self.pf_min <= 1, "pf_min", f"is {self.pf_min}", "use a value in (0, 1]")


@dataclass(frozen=True)
class MessUnit:
    """One mobile energy storage unit (MESS) placed at an IEEE bus for an event (seed 002).

    A truck-mounted storage with a grid-forming converter: it idles in normal operation and
    in restoration acts as storage that can form an island at its bus. The ``ess_*`` names
    match :class:`MicrogridParams` so that the storage physics of
    :mod:`networks.storage` apply unchanged.
    """

    name: str
    bus_ieee: int
    ess_p_ch_max_mw: float
    ess_p_dis_max_mw: float
    ess_q_max_mvar: float
    ess_e_min_mwh: float
    ess_e_max_mwh: float
    ess_e_init_mwh: float
    ess_eta_ch: float
    ess_eta_dis: float
    gf_vm_pu: float = 1.0  # voltage set-point when it forms an island
    mt_p_max_mw: float = 0.0  # no turbine: its grid-forming capacity is its storage alone


@dataclass(frozen=True)
class DSOParams:
    """Operating limits and prices of the distribution system operator."""

    v_min_pu: float
    v_max_pu: float
    vm_ext_grid_pu: float
    loss_cost_cny_per_mwh: float
    switch_cost_cny_per_action: float
    switch_budget_per_horizon: int
    wheeling_fee_cny_per_mwh: float
    p2p_price_cny_per_mwh: float
    p2p_max_mw: float
    substation_p_max_mw: float
    pv_curtail_cost_cny_per_mwh: float
    imbalance_buy_factor: float  # deviation bought at this factor x the buy price
    imbalance_sell_factor: float  # deviation sold at this factor x the sell price

    def validate(self) -> None:
        band = f"voltage band [{self.v_min_pu}, {self.v_max_pu}] is empty"
        fix = "use 0 < v_min_pu < v_max_pu, e.g. 0.9 and 1.1"
        require(0 < self.v_min_pu < self.v_max_pu, "v_min_pu", band, fix)
        for name in (f.name for f in fields(self) if f.name != "v_min_pu"):
            require(not getattr(self, name) < 0, name, f"is {getattr(self, name)} (negative)")
        _check_vm_setpoint("vm_ext_grid_pu", self.vm_ext_grid_pu)


def require(ok: bool, name: str, message: str, fix: str = "use a value >= 0") -> None:
    """Raise :class:`ParameterError` (``name``, ``message``, ``fix``) unless ``ok``."""
    if not ok:
        raise ParameterError(name, message, fix)


def _check_vm_setpoint(name: str, value_pu: float) -> None:
    low, high = VM_SETPOINT_RANGE_PU
    fix = f"use a voltage set-point in [{low}, {high}] pu"
    require(low <= value_pu <= high, name, f"is {value_pu}", fix)


@dataclass(frozen=True)
class NetworkData:
    """Everything the network builder and the controllers need, in one place."""

    branches: pd.DataFrame  # branch_ieee, from_bus_ieee, to_bus_ieee, max_i_ka, is_tie
    microgrids: tuple[MicrogridParams, ...]
    pv: tuple[PVParams, ...]
    dso: DSOParams
    tariff: pd.DataFrame  # hour, buy_price_cny_per_mwh, sell_price_cny_per_mwh
    load_tiers: pd.DataFrame | None = None  # bus_ieee, tier (1 most critical .. 3)
    tier_weights: pd.DataFrame | None = None  # tier, weight (restoration priority)
    mess: tuple[MessUnit, ...] = ()  # mobile storage placed for the scenario's event

    def tier_of(self, bus_ieee: int) -> int:
        """Priority tier of the DSO load at ``bus_ieee`` (3 when not listed)."""
        table = self.load_tiers
        if table is None:
            return 3
        hit = table.loc[table.bus_ieee == bus_ieee, "tier"]
        return int(hit.iloc[0]) if len(hit) else 3

    def tier_weight(self, tier: int) -> float:
        """Restoration weight of a tier (seed 003: 100 / 10 / 0.2)."""
        table = self.tier_weights
        return float(table.set_index("tier").at[tier, "weight"])

    def microgrid(self, name: str) -> MicrogridParams:
        for mg in self.microgrids:
            if mg.name == name:
                return mg
        raise KeyError(name)


def _typed(cls: type, values: dict, **typed: object) -> object:
    """Build ``cls`` from a dict, casting each value to the field's declared type (``typed``:
    fields given as they are)."""
    cast = {"int": int, "float": float, "str": str, "bool": lambda v: bool(int(v))}
    plain = [f for f in fields(cls) if f.name in values and f.name not in typed]
    return cls(**{f.name: cast[f.type](values[f.name]) for f in plain}, **typed)


AT_LEAST_ZERO = (lambda v: float(v) >= 0, "use a value >= 0 (not negative)")
ABOVE_ZERO = (lambda v: float(v) > 0, "use a value > 0")


def check_row(row: pd.Series, checks: dict, error: Callable[..., Exception]) -> None:
    """Raise ``error(column, message, fix)`` for the first value of ``row`` failing its test
    (``checks``: column -> (test, fix))."""
    for column, (ok, fix) in checks.items():
        if not ok(row[column]):
            value = row[column]
            raise error(column, f"is {value!r}" if isinstance(value, str) else f"is {value}", fix)


def checked_records(
    frame: pd.DataFrame, cls: type, checks: dict, error: Callable[..., Exception], names=None
) -> tuple:
    """Rows of ``frame`` as ``cls`` instances (typed per its fields; ``names``: column ->
    field), each checked by :func:`check_row` with ``error(row, column, message, fix)``."""
    out = []
    for _, row in frame.iterrows():
        check_row(row, checks, lambda *args, r=row: error(r, *args))
        out.append(_typed(cls, {(names or {}).get(c, c): v for c, v in row.items()}))
    return tuple(out)


def read_csv_records(path: Path, cls: type) -> list:
    """Rows of ``path`` as ``cls`` instances, typed per the dataclass fields."""
    frame = pd.read_csv(path)
    return [_typed(cls, row) for row in frame.to_dict("records")]


def data_file(data_dir: Path, name: str) -> Path:
    """``data_dir / name``; a built-in folder inside ``networks/data`` (a feeder variant such
    as ``ieee33_mg12``) takes the files it does not hold from ``networks/data``."""
    path = data_dir / name
    if not path.exists() and data_dir.parent == DATA_DIR:
        return DATA_DIR / name
    return path


def load_network_data(data_dir: Path = DATA_DIR) -> NetworkData:
    """Read the built-in (or another folder's) parameter files."""

    def records(name: str, cls: type) -> list:
        return read_csv_records(data_file(data_dir, name), cls)

    def table(name: str) -> pd.DataFrame:
        return pd.read_csv(data_file(data_dir, name))

    return NetworkData(
        branches=table("ieee33_branches.csv"),
        microgrids=tuple(records("microgrids.csv", MicrogridParams)),
        pv=tuple(records("pv.csv", PVParams)),
        dso=records("dso.csv", DSOParams)[0],
        tariff=table("tariff.csv"),
        load_tiers=table("load_tiers.csv"),
        tier_weights=table("tier_weights.csv"),
    )


def with_overrides(params: object, overrides: dict) -> object:
    """Copy of a parameter dataclass with fields replaced (types cast, unknown names refused)."""
    known = {f.name: f.type for f in fields(params)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ParameterError(
            unknown[0], "is not a parameter", f"use one of: {', '.join(sorted(known))}"
        )
    cast = {"int": int, "float": float, "str": str}
    typed = {}
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ParameterError(
                name, f"has value {value!r} of the wrong type", f"give a {known[name]}"
            )
        try:
            typed[name] = cast[known[name]](value)
        except ValueError as err:
            raise ParameterError(name, f"has value {value!r}", f"give a {known[name]}") from err
    return dataclasses.replace(params, **typed)


MESS_FILE = DATA_DIR / "mess.csv"
MESS_TIERS = (1, 2, 3)


@dataclass(frozen=True)
class MessParams:
    """MESS fleet, PV uncertainty set and shedding costs (``networks/data/mess.csv``)."""

    fleet_size_units: int
    p_max_mw: float
    q_max_mvar: float
    e_max_mwh: float
    e_min_mwh: float
    e_init_mwh: float
    eta_ch: float
    eta_dis: float
    placement_cost_cny_per_unit: float
    throughput_cost_cny_per_mwh: float
    candidate_buses_ieee: tuple[int, ...]
    pv_dev_frac: float
    pv_budget_per_period: int
    shed_cost_cny_per_mwh: dict[int, float]  # by tier

    def validate(self) -> None:
        """Raise :class:`ParameterError` on the first impossible value."""
        for name in ("fleet_size_units", "pv_budget_per_period"):
            require(not getattr(self, name) < 0, name, f"is {getattr(self, name)}", "use >= 0")
        for name in ("eta_ch", "eta_dis"):
            value = getattr(self, name)
            require(0 < value <= 1, name, f"is {value}", "use a value in (0, 1]")
        dev = self.pv_dev_frac
        require(0 <= dev <= 1, "pv_dev_frac", f"is {dev}", "use a value in [0, 1]")
        lo, e0, hi = self.e_min_mwh, self.e_init_mwh, self.e_max_mwh
        order = f"energies out of order: e_min {lo}, e_init {e0}, e_max {hi}"
        fix = "make 0 <= e_min_mwh <= e_init_mwh <= e_max_mwh"
        require(0 <= lo <= e0 <= hi, "e_init_mwh", order, fix)
        costs = ("placement_cost_cny_per_unit", "throughput_cost_cny_per_mwh")
        for name in ("p_max_mw", "q_max_mvar", *costs):
            value = getattr(self, name)
            require(not value < 0, name, f"is {value} (negative)", "use >= 0")
        negative = any(c < 0 for c in self.shed_cost_cny_per_mwh.values())
        require(not negative, "shed_cost_tier*_cny_per_mwh", "is negative", "use >= 0")

    def units(self, buses_ieee: Iterable[int]) -> tuple[MessUnit, ...]:
        """One unit per bus (``MESS_b{bus}``), as the co-simulation places them."""
        ess = {f"ess_{k}": getattr(self, k) for k in ("q_max_mvar", "e_min_mwh", "e_max_mwh")}
        ess |= {f"ess_{k}": getattr(self, k) for k in ("e_init_mwh", "eta_ch", "eta_dis")}
        ess |= {"ess_p_ch_max_mw": self.p_max_mw, "ess_p_dis_max_mw": self.p_max_mw}
        return tuple(MessUnit(f"MESS_b{bus}", int(bus), **ess) for bus in sorted(buses_ieee))


def load_mess_params(path: Path | None = None) -> MessParams:
    """Read the one-row MESS table (``#`` lines are comments)."""
    frame = pd.read_csv(path or MESS_FILE, comment="#")
    if len(frame) != 1:
        raise ParameterError("mess.csv", f"has {len(frame)} data rows", "give exactly one row")
    row = frame.iloc[0]
    params = _typed(
        MessParams,
        row.to_dict(),
        candidate_buses_ieee=tuple(int(b) for b in str(row.candidate_buses_ieee).split()),
        shed_cost_cny_per_mwh={t: float(row[f"shed_cost_tier{t}_cny_per_mwh"]) for t in MESS_TIERS},
    )
    params.validate()
    return params
