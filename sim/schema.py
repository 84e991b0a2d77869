"""The run directory's files, declared once: the writer (:mod:`sim.results`), the summary,
the report (:mod:`sim.report`), the CLI's checks and the run's own ``schema.json`` all take
their names, units and sign conventions from here.

Every CSV table has the first column ``time_s`` (seconds since the scenario start) and the
last column ``time`` (the clock time, ISO 8601 without time zone: the scenario's ``start``
plus ``time_s``), and one row per grid step (per plan for the optimiser's files). Sign
conventions, stated per table (and per column family where a table mixes elements):
generation > 0 injects, load > 0 consumes, a microgrid's exchange > 0 imports; storage is
> 0 charging in ``unit_p_mw.csv`` and ``unit_setpoint_p_mw.csv`` (pandapower's convention)
but > 0 *discharging* in ``storage_discharge_p_mw.csv`` (every source table injects > 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIME_COLUMN = "time_s"
DATETIME_COLUMN = "time"

# sign conventions (the text schema.json gives)
GEN = "> 0 injects into the grid (generation)"
LOAD = ">= 0 consumed"
CHARGE = "> 0 charges the storage, < 0 discharges it (pandapower's storage.p_mw)"
DISCHARGE = "> 0 discharges into the grid, < 0 charges (minus pandapower's storage.p_mw)"
CAP = ">= 0 upper limit on the injection (curtailment cap)"
IMPORT = "> 0 the microgrid imports from the feeder through its PCC line, < 0 exports"
FLOW = "> 0 from the branch's from-bus to its to-bus"
NONNEG = ">= 0"
NONE = ""


@dataclass(frozen=True)
class Column:
    """A column, or a family of columns (``pattern`` is a regular expression matched whole)."""

    pattern: str
    unit: str
    sign: str = NONE
    content: str = ""

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.pattern, name) is not None


def _units(sign_ess: str, sign_res: str = GEN) -> tuple[Column, ...]:
    """Column families of the tables keyed by unit name (turbines, wind, PV, storage, loads)."""
    return (
        Column(r".+_mt(\..+)?", "MW", GEN, "micro-turbine (dispatchable)"),
        Column(r".+_wind(\..+)?|PV_.+", "MW", sign_res, "wind or PV unit"),
        Column(r".+_ess(\..+)?|MESS_.+", "MW", sign_ess, "storage (MESS: mobile storage)"),
        Column(r".+_load(\..+)?|load_b\d+", "MW", LOAD, "load"),
    )


STEP_COLUMNS: tuple[Column, ...] = (
    Column("converged", "1/0", NONE, "1: the AC power flow converged"),
    Column("p_loss_mw", "MW", NONNEG, "losses of every line"),
    Column("p_substation_mw", "MW", "> 0 imports from the main grid at bus 1"),
    Column("q_substation_mvar", "Mvar", "> 0 imports from the main grid at bus 1"),
    Column("vm_(min|max)_pu", "pu", NONE, "lowest / highest bus voltage"),
    Column("vm_(min|max)_bus", "label", NONE, "bus of that voltage (a bus_vm_pu.csv column)"),
    Column("loading_max_percent", "%", NONNEG, "highest branch loading"),
    Column("loading_max_branch", "label", NONE, "its branch (a branch table column)"),
    Column("n_v_violations", "count", NONNEG, "buses outside their voltage band"),
    Column("n_overloads", "count", NONNEG, "branches loaded above 100 %"),
    Column(r"load_(demand|served|unserved|not_computed)_mw", "MW", LOAD, "all loads"),
    Column(r"tier\d+_(demand|served|shed)_mw", "MW", LOAD, "loads of one priority tier"),
    Column(r"(wind|pv)_(avail|used)_mw", "MW", GEN, "all wind / PV units"),
    Column(
        "active_faults|islands|islands_collapsed|loads_shed_ufls",
        "text",
        NONE,
        "names joined by ';'",
    ),
    Column(r"cost_.+_cny_per_h", "CNY/h", "> 0 a cost, < 0 an income", "cost rate"),
)
PLAN_COLUMNS: tuple[Column, ...] = (
    Column("mode|status|controller|topology_status|open_branches", "text", NONE, ""),
    Column(r"(central_)?objective_cny|cost_.+_cny", "CNY", "> 0 a cost, < 0 an income"),
    Column("gap_pct", "%", NONE, "ADMM objective against the centralised one"),
    Column("mip_gap", "1", NONNEG, "relative MILP gap at the end of the solve"),
    Column("converged", "1/0", NONE, ""),
    Column("(outer|inner)_iterations", "count", NONNEG, ""),
    Column("admm_messages", "count", NONNEG, "DSO <-> microgrid ADMM messages, both ways"),
    Column("admm_bytes", "bytes", NONNEG, "their size (compact JSON encoding)"),
    # with a [communication] table (controllers.comms): the step's ADMM message faults
    Column("comm_lost", "count", NONNEG, "ADMM messages lost, both directions"),
    Column("comm_late", "count", NONNEG, "replies later than deadline_s (taken one exchange on)"),
    Column("comm_stale", "count", NONNEG, "missing replies: the microgrid's last value reused"),
    Column("comm_finish_retries", "count", NONNEG, "finish requests sent again"),
    Column("mip_nodes", "count", NONNEG, "branch-and-bound nodes of the restoration MILP"),
    Column("mip_start", "text", NONE, "its MIP start: 'previous plan' (shifted) or 'first step'"),
    Column("p_loss_mw", "MW", NONNEG, "the plan's first-period losses"),
)
# wall-clock figures: they change with the machine and its load, so they are kept out of the
# result tables (which are byte-identical for a scenario and seed on any machine load)
TIMING_COLUMNS: tuple[Column, ...] = (
    Column(r"(admm|central|restoration|wall)_time_s", "s", NONNEG, "wall-clock computing time"),
)
HISTORY_COLUMNS: tuple[Column, ...] = (
    Column("outer|inner", "count", NONNEG, "iteration"),
    Column(r"[rs]_(outer|inner)_mw", "MW", NONNEG, "primal (r) / dual (s) residual"),
    Column(r"rho_.+", "CNY/MW^2", NONNEG, "penalty parameter"),
    Column("objective(_cny)?", "CNY", "> 0 a cost, < 0 an income"),
)
VALIDATION_COLUMNS: tuple[Column, ...] = (
    Column("max_dv_pu", "pu", NONNEG, "largest |V_plan - V_ac|"),
    Column("max_dv_bus", "label", NONE, "its bus"),
    Column("p_loss_(model|ac)_mw", "MW", NONNEG, "losses of the 37 IEEE branches"),
    Column("loss_error_mw", "MW", "> 0 the AC losses exceed the plan's"),
    Column("ac_v_violations|ac_overloads", "count", NONNEG, ""),
    Column("unanticipated_violation", "1/0", NONE, "1: an AC violation the plan did not expect"),
    Column("plan_ac_max_dv_pu", "pu", NONNEG, "largest |V_plan - V_ac| of the plan's injections"),
    Column("plan_ac_loss_mw", "MW", NONNEG, "AC losses of the plan's own first-period injections"),
    Column("plan_ac_loss_error_mw", "MW", "> 0 AC of the plan's injections exceeds the plan"),
    Column("plan_ac_v_violations", "count", NONNEG, "buses outside the band in that AC flow"),
)


@dataclass(frozen=True)
class RunFile:
    """One file of a run directory.

    ``key``: its name in the report's data (and its ``quantity`` in ``results.parquet``);
    ``source``: the recorded quantity a table is written from (``None`` for a file with its
    own writer); ``optional``: written only by some controllers (the optimisers), so a run
    without it is complete; ``at_end``: written when the run finishes (absent from an
    unfinished run). ``element``: the pandapower table whose elements the columns name
    (``bus``, ``line``, ``unit``: sgen, storage or load by name; ``microgrid``: its PCC line
    ``{MG}_pcc``; empty for tables of scalars). ``sign``: the sign of every value, unless
    ``columns`` declares it per column family. ``tidy``: in the long ``results.parquet``.
    """

    key: str
    file: str
    unit: str
    content: str
    source: str | None = None
    optional: bool = False
    element: str = ""
    sign: str = NONE
    columns: tuple[Column, ...] = ()
    at_end: bool = False
    tidy: bool = False


def _table(key, file, unit, content, source, element, sign=NONE, columns=()) -> RunFile:
    """A per-element table recorded step by step (in the long table unless mixed legacy)."""
    return RunFile(key, file, unit, content, source, False, element, sign, columns, tidy=True)


def _quantity(key: str, source: str, element: str, sign: str, content: str) -> RunFile:
    """A per-element table of the recorded quantity ``source``, in ``{source}.csv``."""
    unit = {"mw": "MW", "mwh": "MWh"}[source.rsplit("_", 1)[1]]
    return _table(key, f"{source}.csv", unit, content, source, element, sign)


FILES: tuple[RunFile, ...] = (
    RunFile("steps", "steps.csv", "mixed", "scalar figures per step", columns=STEP_COLUMNS),
    _table("bus_vm", "bus_vm_pu.csv", "pu", "bus voltage magnitude", "vm_pu", "bus", NONNEG),
    _table(
        "branch_loading", "branch_loading_percent.csv", "%", "loading", "loading_percent", "line"
    ),
    _table("branch_p_from", "branch_p_from_mw.csv", "MW", "flow", "p_from_mw", "line", FLOW),
    _table("branch_q_from", "branch_q_from_mvar.csv", "Mvar", "flow", "q_from_mvar", "line", FLOW),
    _table(
        "switch_closed",
        "switch_closed.csv",
        "1/0",
        "1: the line's switch is closed",
        "switch_closed",
        "line",
    ),
    RunFile(
        "unit_p",
        "unit_p_mw.csv",
        "MW",
        "applied unit powers, mixed signs (see the split tables)",
        "unit_p_mw",
        element="unit",
        columns=_units(CHARGE),
    ),
    _table(
        "pv_q",
        "pv_q_mvar.csv",
        "Mvar",
        "applied PV reactive power",
        "pv_q_mvar",
        "unit",
        columns=(Column(r"PV_.+", "Mvar", GEN, "PV unit"),),
    ),
    _table(
        "setpoints",
        "unit_setpoint_p_mw.csv",
        "MW",
        "controller set-points",
        "setpoints_mw",
        "unit",
        columns=_units(CHARGE, CAP),
    ),
    _quantity("soc", "soc_mwh", "unit", NONNEG, "storage energy at the step start"),
    _quantity("exchange", "exchange_p_mw", "microgrid", IMPORT, "PCC exchange"),
    RunFile(
        "available",
        "available_p_mw.csv",
        "MW",
        "the profiles' values: available wind/PV and load demand (see the split tables)",
        "available_p_mw",
        element="unit",
        columns=_units(CHARGE),
    ),
    _quantity("load_demand", "load_demand_p_mw", "unit", LOAD, "demand per load"),
    _quantity("load_served", "load_served_p_mw", "unit", LOAD, "served per load"),
    _quantity("load_shed", "load_shed_p_mw", "unit", LOAD, "shed = demand - served"),
    _quantity("renewable_available", "renewable_available_p_mw", "unit", GEN, "available wind/PV"),
    _quantity("renewable_p", "renewable_p_mw", "unit", GEN, "injected wind/PV"),
    _quantity("turbine_p", "turbine_p_mw", "unit", GEN, "micro-turbine output"),
    _quantity("storage_discharge", "storage_discharge_p_mw", "unit", DISCHARGE, "storage power"),
    RunFile("plans", "plans.csv", "mixed", "one row per plan", optional=True, columns=PLAN_COLUMNS),
    RunFile(
        "timings",
        "timings.csv",
        "s",
        "wall-clock times per plan (machine dependent)",
        optional=True,
        columns=TIMING_COLUMNS,
    ),
    RunFile(
        "admm_history",
        "admm_history.csv",
        "mixed",
        "ADMM residuals per iteration",
        optional=True,
        columns=HISTORY_COLUMNS,
    ),
    RunFile(
        "p2p",
        "p2p_trades.csv",
        "MW",
        "planned P2P trades",
        optional=True,
        columns=(Column(r".+->.+", "MW", "> 0 the first microgrid (A in A->B) buys"),),
    ),
    RunFile(
        "soc_plan",
        "soc_plan.csv",
        "MWh",
        "planned SOC, first period end",
        optional=True,
        element="unit",
        sign=NONNEG,
    ),
    RunFile(
        "validation",
        "validation.csv",
        "mixed",
        "plan against AC",
        optional=True,
        columns=VALIDATION_COLUMNS,
    ),
    RunFile("manifest", "manifest.json", "", "scenario, versions, status, heartbeat"),
    RunFile("net", "net.json", "", "the pandapower net (pandapower.from_json)"),
    RunFile("summary", "summary.json", "", "the run's figures", at_end=True),
    RunFile("schema", "schema.json", "", "every table's columns: unit, sign, element", at_end=True),
    RunFile(
        "results",
        "results.parquet",
        "",
        "every per-element table in one long table (time, "
        "time_s, element, element_type, quantity, unit, value)",
        at_end=True,
    ),
)
BY_KEY = {f.key: f for f in FILES}
BY_FILE = {f.file: f for f in FILES}
TIME_COLUMNS = {
    TIME_COLUMN: Column(TIME_COLUMN, "s", NONNEG, "seconds since the scenario start"),
    DATETIME_COLUMN: Column(DATETIME_COLUMN, "ISO 8601", NONE, "clock time: start + time_s"),
}
# the files without which a directory holds no run to report on
ESSENTIAL_FILES = ("manifest.json", "steps.csv")
# summary.json figures a run is judged by: the sweep's table columns and the report's comparison
SUMMARY_KEY_FIGURES = (
    "energy_demand_mwh",
    "energy_served_mwh",
    "energy_unserved_mwh",
    "energy_not_computed_mwh",
    "energy_losses_mwh",
    "energy_substation_mwh",
    "wind_used_mwh",
    "vm_min_pu",
    "vm_max_pu",
    "loading_max_percent",
    "n_voltage_violations",
    "n_overloads",
    "n_not_converged",
    "ac_unanticipated_violation_steps",
    "plan_ac_violation_steps",
    "plan_ac_max_dv_pu",
)
# written besides the declared files, cleared with them by `mgcosim run --overwrite`
OTHER_RUN_FILES = ("report.html", "mess_placement.json")


def recorded_tables() -> dict[str, str]:
    """Recorded quantity -> file, for the tables written step by step from the grid's outputs."""
    return {f.source: f.file for f in FILES if f.source is not None}


def csv_files(optional: bool) -> dict[str, str]:
    """Report key -> CSV file, the optional (optimiser) files or the others."""
    return {f.key: f.file for f in FILES if f.file.endswith(".csv") and f.optional == optional}


def json_files() -> dict[str, str]:
    return {f.key: f.file for f in FILES if f.key in ("manifest", "summary")}


def expected_files(finished: bool) -> list[str]:
    """The files every run directory holds (an unfinished run lacks the ``at_end`` ones)."""
    return [f.file for f in FILES if not f.optional and (finished or not f.at_end)]


def column_spec(table: RunFile, name: str) -> Column | None:
    """Unit, sign and content of one column of ``table`` (None: not declared)."""
    if name in TIME_COLUMNS:
        return TIME_COLUMNS[name]
    for column in table.columns:
        if column.matches(name):
            return column
    if table.element and not table.columns:
        return Column(re.escape(name), table.unit, table.sign, table.content)
    return None
