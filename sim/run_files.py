"""Analysis-ready files of a run directory, beside the step-by-step CSVs of :mod:`sim.results`:
the pandapower net (``net.json``), the columns' units, signs and elements (``schema.json``,
from :mod:`sim.schema`), the long table (``results.parquet``) and :func:`read_table`.

Column labels name elements of ``net.json``: a feeder bus or branch by its IEEE number (the
``ieee`` column of ``net.bus`` / ``net.line``: label ``"18"`` is the bus with ``ieee == 18``),
a microgrid bus or line by its ``name`` (``"MG1"`` is MG1's PCC bus, ``"MG1.b2"`` bus 2 of
its internal network, ``"MG1_pcc"`` its PCC line), a unit by its ``name`` in ``net.sgen``,
``net.storage`` or ``net.load``. ``schema.json`` gives each column's pandapower table and
index.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from mgcosim.sim.schema import (
    BY_FILE,
    BY_KEY,
    DATETIME_COLUMN,
    FILES,
    TIME_COLUMN,
    RunFile,
    column_spec,
)

FEEDER = "feeder"
RENEWABLE_TYPES = ("WP", "PV")


def clock_time(start: datetime, time_s: int) -> str:
    """The ``time`` column: ISO 8601 clock time of ``time_s`` after ``start``."""
    return (start + timedelta(seconds=int(time_s))).isoformat()


def unit_kinds(net) -> dict[str, str]:
    """Kind of every unit of the net by name: renewable, turbine, storage or load."""
    kinds = {
        str(n): "renewable" if t in RENEWABLE_TYPES else "turbine"
        for n, t in zip(net.sgen.name, net.sgen.type, strict=True)
    }
    kinds |= {str(n): "storage" for n in net.storage.name}
    return kinds | {str(n): "load" for n in net.load.name}


def split_units(
    unit_p_mw: dict[str, float], available_p_mw: dict[str, float], kinds: dict[str, str]
) -> dict[str, dict[str, float]]:
    """The split tables of one step, one sign convention each (:mod:`sim.schema`): the units
    as the controller commands them (a part ``{unit}.{part}`` of an internal microgrid is in
    ``unit_p_mw.csv``), renewables and turbines > 0 injecting, storage > 0 discharging."""

    def of(kind: str, values: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in values.items() if kinds.get(k) == kind and "." not in k}

    return {
        "renewable_available_p_mw": of("renewable", available_p_mw),
        "renewable_p_mw": of("renewable", unit_p_mw),
        "turbine_p_mw": of("turbine", unit_p_mw),
        "storage_discharge_p_mw": {k: 0.0 - p for k, p in of("storage", unit_p_mw).items()},
    }


def save_net(net, path: Path) -> None:
    """The net as pandapower's JSON (``pandapower.from_json`` reads it back)."""
    import pandapower as pp

    pp.to_json(net, str(path))


def element_index(net) -> dict[str, dict[str, dict]]:
    """Label -> {table, index, network} of every bus, line and unit of the net."""
    bus_network = {int(i): _network(ieee, name) for i, ieee, name in _rows(net.bus)}
    buses, lines = (
        {_label(ieee, name): (int(i), _network(ieee, name)) for i, ieee, name in _rows(table)}
        for table in (net.bus, net.line)
    )
    units = {
        str(net[t].at[i, "name"]): (t, int(i), bus_network[int(net[t].at[i, "bus"])])
        for t in ("sgen", "storage", "load")
        for i in net[t].index
    }
    pcc = {name.removesuffix("_pcc"): v for name, v in lines.items() if name.endswith("_pcc")}
    return {
        "bus": {k: {"table": "bus", "index": i, "network": n} for k, (i, n) in buses.items()},
        "line": {k: {"table": "line", "index": i, "network": n} for k, (i, n) in lines.items()},
        "unit": {k: {"table": t, "index": i, "network": n} for k, (t, i, n) in units.items()},
        "microgrid": {k: {"table": "line", "index": i, "network": k} for k, (i, _) in pcc.items()},
    }


def _rows(table: pd.DataFrame):
    ieee = table["ieee"] if "ieee" in table else pd.Series(0, index=table.index)
    return zip(table.index, ieee.fillna(0).astype(int), table["name"].astype(str), strict=True)


def _label(ieee: int, name: str) -> str:
    return str(ieee) if ieee > 0 else name


def _network(ieee: int, name: str) -> str:
    return FEEDER if ieee > 0 else name.split(".")[0].split("_")[0]


def csv_header(path: Path) -> list[str]:
    with open(path) as handle:
        return handle.readline().rstrip("\r\n").split(",")


def describe_run(run_dir: Path, elements: dict[str, dict[str, dict]]) -> dict:
    """``schema.json``: every CSV table present with each column's unit, sign, content and
    element; a column that :mod:`sim.schema` does not declare is marked ``undeclared``."""
    tables = {}
    for f in FILES:
        path = Path(run_dir) / f.file
        if f.file.endswith(".csv") and path.is_file():
            tables[f.file] = {
                "key": f.key,
                "content": f.content,
                "element_table": f.element or None,
                "columns": [_describe_column(f, c, elements) for c in csv_header(path)],
            }
    return {
        "time": f"{TIME_COLUMN}: seconds since the scenario start; {DATETIME_COLUMN}: "
        "ISO 8601 clock time (manifest.json start + time_s), the last column of every table",
        "labels": "a feeder bus or branch by its IEEE number (net.bus / net.line column "
        "'ieee'), anything else by its name in net.json; network 'feeder' or the microgrid",
        "tables": tables,
        "results.parquet": {"columns": list(LONG_COLUMNS), "tables": tidy_files()},
    }


def _describe_column(f: RunFile, name: str, elements: dict) -> dict:
    spec = column_spec(f, name)
    out: dict = {"name": name}
    if spec is None:
        return out | {"undeclared": True}
    out |= {"unit": spec.unit, "sign": spec.sign, "content": spec.content}
    if f.element and name not in (TIME_COLUMN, DATETIME_COLUMN):
        out["element"] = elements.get(f.element, {}).get(name)
    return out


LONG_COLUMNS = ("time", "time_s", "element", "element_type", "quantity", "unit", "value")


def tidy_files() -> list[str]:
    return [f.file for f in FILES if f.tidy]


def write_long_table(run_dir: Path, path: Path) -> int:
    """``results.parquet`` from the per-element CSVs; returns its number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("time", pa.timestamp("s")),
            ("time_s", pa.int64()),
            ("element", pa.dictionary(pa.int32(), pa.string())),
            ("element_type", pa.dictionary(pa.int32(), pa.string())),
            ("quantity", pa.dictionary(pa.int32(), pa.string())),
            ("unit", pa.dictionary(pa.int32(), pa.string())),
            ("value", pa.float64()),
        ]
    )
    rows = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for f in FILES:
            csv_path = Path(run_dir) / f.file
            if not f.tidy or not csv_path.is_file():
                continue
            long = long_frame(f, pd.read_csv(csv_path))
            writer.write_table(pa.Table.from_pandas(long, schema=schema, preserve_index=False))
            rows += len(long)
    return rows


def long_frame(f: RunFile, table: pd.DataFrame) -> pd.DataFrame:
    """One per-element table melted to (time, time_s, element, element_type, quantity,
    unit, value)."""
    table = table.copy()
    table[DATETIME_COLUMN] = pd.to_datetime(table[DATETIME_COLUMN])
    long = table.melt(
        id_vars=[DATETIME_COLUMN, TIME_COLUMN], var_name="element", value_name="value"
    )
    return long.assign(
        element=long.element.astype(str),
        element_type=f.element,
        quantity=f.key,
        unit=f.unit,
        value=long.value.astype(float),
    )[list(LONG_COLUMNS)]


def read_long_table(run_dir: Path) -> pd.DataFrame:
    """``results.parquet`` as a DataFrame (text columns as categories)."""
    return pd.read_parquet(Path(run_dir) / "results.parquet")


def read_table(run_dir: Path, name: str, network: str | None = None) -> pd.DataFrame:
    """A table of a run directory indexed by clock time (a ``DatetimeIndex`` named ``time``).

    ``name``: a key of :mod:`sim.schema` (``"bus_vm"``) or a file name (``"bus_vm_pu.csv"``).
    Feeder buses and branches become integer columns (``vm[18]``); microgrid buses, lines
    and units keep their names (``vm["MG1.b2"]``), so ``network="feeder"`` keeps the integer
    columns only and ``network="MG1"`` those of one microgrid. ``time_s`` is dropped (it is
    the index minus the start). Runs written before the ``time`` column get it from the
    manifest's ``start``. ``network`` applies to the bus and branch tables.
    """
    f = BY_KEY.get(name) or BY_FILE.get(name)
    if f is None or not f.file.endswith(".csv"):
        known = ", ".join(x.key for x in FILES if x.file.endswith(".csv"))
        raise ValueError(f"no table {name!r} in a run directory; known: {known}")
    df = pd.read_csv(Path(run_dir) / f.file)
    if DATETIME_COLUMN in df:
        index = pd.to_datetime(df.pop(DATETIME_COLUMN))
    else:
        start = pd.Timestamp(json.loads((Path(run_dir) / "manifest.json").read_text())["start"])
        index = start + pd.to_timedelta(df[TIME_COLUMN], unit="s")
    df = df.drop(columns=TIME_COLUMN).set_index(pd.DatetimeIndex(index, name=DATETIME_COLUMN))
    if f.element in ("bus", "line"):
        df.columns = [int(c) if str(c).isdigit() else str(c) for c in df.columns]
    if network is not None and f.element in ("bus", "line"):
        df = df[[c for c in df.columns if column_network(c) == network]]
    return df


def column_network(label: int | str) -> str:
    """``feeder`` for an integer (IEEE) column, else the microgrid the label starts with."""
    if isinstance(label, int) or str(label).isdigit():
        return FEEDER
    return str(label).split(".")[0].split("_")[0]
