"""Internal networks of the microgrids (seed 003), read from ``networks/data/mg_internal_*.csv``.

Each microgrid of ``microgrids.csv`` is a small radial network behind its point of common
coupling (PCC): a PCC bus (the tie line's end, no load) and feeder buses with loads of tier
1..3, micro turbines (``mt``, grid-forming), storage (``ess``) and wind (``wind``):

* ``mg_internal_buses.csv``: ``microgrid, bus, is_pcc, tier, load_p_mw (peak), vn_kv,
  v_min_pu, v_max_pu``; Q follows the microgrid's ``load_pf``. The PCC band is the voltage
  the DSO must hold at the tie; the other bands must hold for any PCC voltage in it.
* ``mg_internal_lines.csv``: ``microgrid, line, from_bus, to_bus, r_ohm, x_ohm, max_i_ka``
  (a tree rooted at the PCC bus).
* ``mg_internal_units.csv``: ``microgrid, unit, kind, bus, p_max_mw, q_max_mvar,
  grid_forming``; storage energy stays in ``microgrids.csv``, shared by power rating.

Per microgrid the bus loads, turbines, storage and wind units add up to the lumped
``load_p_peak_mw``, ``mt_p_max_mw``, ``ess_p_dis_max_mw`` and ``wind_p_rated_mw`` (checked).
The values the seed does not give are chosen in each file's ``note`` column; the feeder-head
line carries the tie-line flow and is rated below the export capability, so it shapes the
projected polygon, and the other lines are rated above any internal flow.

:func:`load_microgrid_networks` returns frozen :class:`MicrogridNetwork` objects; bad data
raise :class:`MicrogridDataError` naming the file, the row, the field and the fix.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import networkx as nx
import pandas as pd

from mgcosim.networks.params import (
    ABOVE_ZERO,
    AT_LEAST_ZERO,
    DATA_DIR,
    MicrogridParams,
    NetworkData,
    ParameterError,
    check_row,
    checked_records,
    load_network_data,
)

BUSES_FILE = "mg_internal_buses.csv"
LINES_FILE = "mg_internal_lines.csv"
UNITS_FILE = "mg_internal_units.csv"
UNIT_KINDS = ("mt", "ess", "wind")
TIERS = (1, 2, 3)
TOTAL_TOL_MW = 1e-6

COLUMNS = {
    BUSES_FILE: tuple("microgrid bus is_pcc tier load_p_mw vn_kv v_min_pu v_max_pu".split()),
    LINES_FILE: ("microgrid", "line", "from_bus", "to_bus", "r_ohm", "x_ohm", "max_i_ka"),
    UNITS_FILE: ("microgrid", "unit", "kind", "bus", "p_max_mw", "q_max_mvar", "grid_forming"),
}


class MicrogridDataError(ParameterError):
    """Impossible internal-network data: which file, where, which field, and how to fix it."""

    def __init__(self, file: str, where: str, field: str, message: str, fix: str) -> None:
        super().__init__(f"{file}, {where}, field {field}", message, fix)
        self.file, self.where = file, where


@dataclass(frozen=True)
class InternalBus:
    bus: int  # local number inside the microgrid
    is_pcc: bool
    tier: int  # 1..3 for a load bus, 0 when the bus has no load
    load_p_mw: float  # peak
    load_q_mvar: float  # at the microgrid's load power factor
    vn_kv: float
    v_min_pu: float
    v_max_pu: float


@dataclass(frozen=True)
class InternalLine:
    name: str
    from_bus: int
    to_bus: int
    r_pu: float  # S_base 1 MVA, V_base vn_kv of the from bus
    x_pu: float
    s_max_mva: float  # at nominal voltage


@dataclass(frozen=True)
class InternalUnit:
    name: str
    kind: str  # "mt", "ess" or "wind"
    bus: int
    p_max_mw: float  # turbine rating, storage discharge (= charge) limit, wind rating
    q_max_mvar: float  # reactive capability, symmetric
    grid_forming: bool


@dataclass(frozen=True)
class MicrogridNetwork:
    """One microgrid's internal network, its units and its lumped parameters."""

    name: str
    bus_ieee: int
    params: MicrogridParams
    buses: tuple[InternalBus, ...]
    lines: tuple[InternalLine, ...]  # oriented away from the PCC bus
    units: tuple[InternalUnit, ...]
    tier_weight: dict[int, float]  # restoration weight of each tier (seed 003: 100/10/0.2)

    @property
    def pcc(self) -> InternalBus:
        return next(b for b in self.buses if b.is_pcc)

    @property
    def pcc_bus(self) -> int:
        return self.pcc.bus

    @property
    def pcc_v_band_pu(self) -> tuple[float, float]:
        return self.pcc.v_min_pu, self.pcc.v_max_pu

    @property
    def pcc_s_max_mva(self) -> float:
        """Apparent-power rating of the tie line (its ``pcc_max_i_ka`` at nominal voltage)."""
        return math.sqrt(3) * self.pcc.vn_kv * self.params.pcc_max_i_ka

    @property
    def load_buses(self) -> tuple[InternalBus, ...]:
        return tuple(b for b in self.buses if b.tier in TIERS)

    def loads_by_tier(self) -> dict[int, tuple[InternalBus, ...]]:
        return {t: tuple(b for b in self.load_buses if b.tier == t) for t in TIERS}

    def load_mw_by_tier(self) -> dict[int, float]:
        return {t: sum(b.load_p_mw for b in buses) for t, buses in self.loads_by_tier().items()}

    def units_of(self, kind: str) -> tuple[InternalUnit, ...]:
        return tuple(u for u in self.units if u.kind == kind)

    @property
    def grid_forming(self) -> bool:
        return any(u.grid_forming for u in self.units)


# --- reading -------------------------------------------------------------------------------
def load_microgrid_networks(
    data: NetworkData | None = None, data_dir: Path = DATA_DIR
) -> dict[str, MicrogridNetwork]:
    """Every microgrid's internal network, checked against the lumped ``data.microgrids``."""
    data = data or load_network_data(data_dir)
    tables = {name: _read(data_dir / name) for name in COLUMNS}
    return internal_networks_from_tables(data, tables)


def internal_networks_from_tables(
    data: NetworkData, tables: dict[str, pd.DataFrame]
) -> dict[str, MicrogridNetwork]:
    """Build and validate from already read tables (keyed by file name)."""
    for file, frame in tables.items():
        _check_columns(file, frame)
    known = {mg.name for mg in data.microgrids}
    checks = {"microgrid": (lambda v: v in known, f"use one of microgrids.csv: {sorted(known)}")}
    for file, frame in tables.items():
        for i, row in frame.iterrows():
            check_row(row, checks, partial(MicrogridDataError, file, f"row {i + 2}"))
    weights = {t: data.tier_weight(t) for t in TIERS}
    return {
        mg.name: _network(mg, {f: t[t["microgrid"] == mg.name] for f, t in tables.items()}, weights)
        for mg in data.microgrids
    }


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise MicrogridDataError(
            path.name, "file", "-", "not found", f"create {path} with columns {COLUMNS[path.name]}"
        ) from None


def _check_columns(file: str, frame: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS[file] if c not in frame.columns]
    if missing:
        raise MicrogridDataError(
            file, "header", missing[0], "column missing", f"add the columns {missing}"
        )
    for column in COLUMNS[file]:
        blank = frame[column].isna()
        if column != "tier" and blank.any():
            row = int(blank.to_numpy().nonzero()[0][0]) + 2
            raise MicrogridDataError(file, f"row {row}", column, "is empty", "give a value")


def _network(
    mg: MicrogridParams, parts: dict[str, pd.DataFrame], weights: dict[int, float]
) -> MicrogridNetwork:
    if parts[BUSES_FILE].empty:
        fix = f"add the buses of {mg.name} (one with is_pcc = 1)"
        raise MicrogridDataError(BUSES_FILE, mg.name, "microgrid", "has no internal buses", fix)
    buses = _buses(mg, parts[BUSES_FILE])
    lines = _lines(mg, parts[LINES_FILE], {b.bus: b for b in buses})
    units = _units(mg, parts[UNITS_FILE], {b.bus for b in buses})
    net = MicrogridNetwork(mg.name, mg.bus_ieee, mg, buses, lines, units, weights)
    _check_totals(net)
    return net


def _where(mg: MicrogridParams, kind: str, label: object) -> str:
    return f"{mg.name} {kind} {label}"


def _unique(file: str, mg: MicrogridParams, labels: list, field: str) -> None:
    if duplicate := sorted({x for x in labels if labels.count(x) > 1}):
        raise MicrogridDataError(
            file, mg.name, field, f"{field} {duplicate[0]} listed twice", f"give each {field} once"
        )


def _buses(mg: MicrogridParams, frame: pd.DataFrame) -> tuple[InternalBus, ...]:
    _unique(BUSES_FILE, mg, [int(b) for b in frame["bus"]], "bus")
    n_pcc = int(frame["is_pcc"].astype(int).sum())
    if n_pcc != 1:
        fix = "mark exactly one bus with is_pcc = 1"
        raise MicrogridDataError(BUSES_FILE, mg.name, "is_pcc", f"{n_pcc} PCC buses", fix)
    tan_phi = math.tan(math.acos(mg.load_pf))
    out = []
    for _, row in frame.iterrows():
        error = partial(MicrogridDataError, BUSES_FILE, _where(mg, "bus", int(row.bus)))
        check_row(row, {"load_p_mw": AT_LEAST_ZERO, "vn_kv": ABOVE_ZERO}, error)
        is_pcc, load = bool(int(row.is_pcc)), float(row.load_p_mw)
        tier = 0 if pd.isna(row.tier) else int(row.tier)
        if is_pcc and load > 0:
            raise error("load_p_mw", f"the PCC bus carries {load} MW", "move the load")
        if load > 0 and tier not in TIERS:
            raise error("tier", f"is {tier} for a load of {load} MW", "use tier 1, 2 or 3")
        band = float(row.v_min_pu), float(row.v_max_pu)
        if not 0 < band[0] < band[1]:
            raise error("v_min_pu", f"band {list(band)} is empty", "use 0 < v_min_pu < v_max_pu")
        tier = tier if load > 0 else 0
        out.append(
            InternalBus(int(row.bus), is_pcc, tier, load, load * tan_phi, float(row.vn_kv), *band)
        )
    pcc = next(b for b in out if b.is_pcc)
    for b in out:
        if not b.is_pcc and not (b.v_min_pu <= pcc.v_min_pu and pcc.v_max_pu <= b.v_max_pu):
            raise MicrogridDataError(
                BUSES_FILE,
                _where(mg, "bus", b.bus),
                "v_min_pu",
                f"band [{b.v_min_pu}, {b.v_max_pu}] does not contain the PCC band "
                f"[{pcc.v_min_pu}, {pcc.v_max_pu}]",
                "widen the bus band or narrow the PCC band",
            )
    return tuple(sorted(out, key=lambda b: b.bus))


def _lines(
    mg: MicrogridParams, frame: pd.DataFrame, buses: dict[int, InternalBus]
) -> tuple[InternalLine, ...]:
    graph = nx.Graph()
    graph.add_nodes_from(buses)
    for _, row in frame.iterrows():
        error = partial(MicrogridDataError, LINES_FILE, _where(mg, "line", row.line))
        for end in ("from_bus", "to_bus"):
            if int(row[end]) not in buses:
                bad = f"bus {int(row[end])} is not a bus of {mg.name}"
                raise error(end, bad, f"use one of {sorted(buses)}")
        check_row(
            row, {"r_ohm": AT_LEAST_ZERO, "x_ohm": AT_LEAST_ZERO, "max_i_ka": ABOVE_ZERO}, error
        )
        graph.add_edge(int(row.from_bus), int(row.to_bus))
    if len(frame) != len(buses) - 1 or not nx.is_connected(graph) or not nx.is_tree(graph):
        raise MicrogridDataError(
            LINES_FILE,
            mg.name,
            "from_bus/to_bus",
            f"{len(frame)} lines over {len(buses)} buses do not form one radial tree",
            "connect every bus to the PCC bus by exactly one path (n_buses - 1 lines)",
        )
    depth = nx.shortest_path_length(graph, next(b.bus for b in buses.values() if b.is_pcc))
    out = []
    for _, row in frame.iterrows():
        a, b = sorted((int(row.from_bus), int(row.to_bus)), key=depth.get)  # away from the PCC
        vn = buses[a].vn_kv  # z_base = vn^2 with S_base = 1 MVA
        s_max = math.sqrt(3) * vn * float(row.max_i_ka)
        out.append(
            InternalLine(
                str(row.line), a, b, float(row.r_ohm) / vn**2, float(row.x_ohm) / vn**2, s_max
            )
        )
    return tuple(out)


def _units(mg: MicrogridParams, frame: pd.DataFrame, buses: set[int]) -> tuple[InternalUnit, ...]:
    _unique(UNITS_FILE, mg, [str(u) for u in frame["unit"]], "unit")
    checks = {
        "kind": (lambda v: v in UNIT_KINDS, f"use one of {list(UNIT_KINDS)}"),
        "bus": (lambda v: int(v) in buses, f"use a bus of {mg.name}: {sorted(buses)}"),
        "p_max_mw": AT_LEAST_ZERO,
        "q_max_mvar": AT_LEAST_ZERO,
    }

    def error(row, column, message, fix):
        return MicrogridDataError(UNITS_FILE, _where(mg, "unit", row.unit), column, message, fix)

    return checked_records(frame, InternalUnit, checks, error, names={"unit": "name"})


def _check_totals(net: MicrogridNetwork) -> None:
    """The internal view must add up to the lumped one of ``microgrids.csv``."""
    p = net.params
    checks = (
        (BUSES_FILE, "load_p_mw", sum(b.load_p_mw for b in net.buses), "load_p_peak_mw"),
        (UNITS_FILE, "p_max_mw (mt)", _rating(net, "mt"), "mt_p_max_mw"),
        (UNITS_FILE, "p_max_mw (ess)", _rating(net, "ess"), "ess_p_dis_max_mw"),
        (UNITS_FILE, "p_max_mw (wind)", _rating(net, "wind"), "wind_p_rated_mw"),
    )
    for file, field, total, lumped in checks:
        expected = getattr(p, lumped)
        if abs(total - expected) > TOTAL_TOL_MW:
            raise MicrogridDataError(
                file,
                net.name,
                field,
                f"sums to {total:g} MW but microgrids.csv has {lumped} = {expected:g}",
                "make the internal ratings add up to the lumped one",
            )


def _rating(net: MicrogridNetwork, kind: str) -> float:
    return sum(u.p_max_mw for u in net.units_of(kind))


def feeder_head_s_max_mva(network: MicrogridNetwork) -> float:
    """Apparent power of the lines leaving the PCC bus at their rated current with the PCC
    at the bottom of its band (``S = sqrt(3) V_min I_max``): the most the microgrid can
    exchange, whatever its units do, with AC loading within 100 % over the whole band."""
    v_min_pu = network.pcc_v_band_pu[0]
    return v_min_pu * sum(ln.s_max_mva for ln in network.lines if ln.from_bus == network.pcc_bus)


def feeder_head_p_max_mw(network: MicrogridNetwork, pf: float = 0.95) -> float:
    """Active part of :func:`feeder_head_s_max_mva` at power factor ``pf``."""
    return pf * feeder_head_s_max_mva(network)


def with_feeder_head_limits(
    data: NetworkData, networks: dict[str, MicrogridNetwork]
) -> NetworkData:
    """The lumped data the controllers plan with when the grid runs the internal networks
    (they see a microgrid only through its PCC, seed 003): ``pcc_p_max_mw`` and
    ``pcc_s_max_mva`` capped at :func:`feeder_head_p_max_mw` and :func:`feeder_head_s_max_mva`."""
    mgs = tuple(
        dataclasses.replace(
            mg,
            pcc_p_max_mw=min(mg.pcc_p_max_mw, feeder_head_p_max_mw(networks[mg.name])),
            pcc_s_max_mva=min(mg.pcc_s_max_mva, feeder_head_s_max_mva(networks[mg.name])),
        )
        for mg in data.microgrids
    )
    return dataclasses.replace(data, microgrids=mgs)
