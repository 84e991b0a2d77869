"""The run directory's files, declared once: the writer (:mod:`sim.results`), the summary and
the report (:mod:`sim.report`) all take their names from here.

Every CSV table has the first column ``time_s`` (seconds since the scenario start) and one
row per grid step (per plan for the optimiser's files). Sign conventions are those of
:mod:`networks.params`: generation > 0 injects, load > 0 consumes, storage > 0 charges, a
microgrid's exchange > 0 imports.
"""

from __future__ import annotations

from dataclasses import dataclass

TIME_COLUMN = "time_s"


@dataclass(frozen=True)
class RunFile:
    """One file of a run directory.

    ``key``: its name in the report's data; ``source``: the recorded quantity a table is
    written from (``None`` for a file with its own writer); ``optional``: written only by some
    controllers (the optimisers), so a run without it is complete.
    """

    key: str
    file: str
    unit: str
    content: str
    source: str | None = None
    optional: bool = False


FILES: tuple[RunFile, ...] = (
    RunFile("steps", "steps.csv", "mixed", "scalar figures per step (units in column names)"),
    RunFile("bus_vm", "bus_vm_pu.csv", "pu", "bus voltage magnitude", "vm_pu"),
    RunFile(
        "branch_loading", "branch_loading_percent.csv", "%", "branch loading", "loading_percent"
    ),
    RunFile(
        "branch_p_from", "branch_p_from_mw.csv", "MW", "active flow at the from end", "p_from_mw"
    ),
    RunFile(
        "branch_q_from", "branch_q_from_mvar.csv", "Mvar", "reactive flow, from end", "q_from_mvar"
    ),
    RunFile(
        "switch_closed", "switch_closed.csv", "1/0", "switch state (1 closed)", "switch_closed"
    ),
    RunFile("unit_p", "unit_p_mw.csv", "MW", "applied unit powers", "unit_p_mw"),
    RunFile("setpoints", "unit_setpoint_p_mw.csv", "MW", "controller set-points", "setpoints_mw"),
    RunFile("soc", "soc_mwh.csv", "MWh", "storage energy at the step start", "soc_mwh"),
    RunFile("exchange", "exchange_p_mw.csv", "MW", "microgrid PCC import", "exchange_p_mw"),
    RunFile(
        "available", "available_p_mw.csv", "MW", "available wind/PV, load demand", "available_p_mw"
    ),
    RunFile("load_demand", "load_demand_p_mw.csv", "MW", "demand per load", "load_demand_p_mw"),
    RunFile("load_served", "load_served_p_mw.csv", "MW", "served per load", "load_served_p_mw"),
    RunFile("load_shed", "load_shed_p_mw.csv", "MW", "shed per load", "load_shed_p_mw"),
    RunFile("plans", "plans.csv", "mixed", "one row per plan", optional=True),
    RunFile("admm_history", "admm_history.csv", "MW", "ADMM residuals", optional=True),
    RunFile("p2p", "p2p_trades.csv", "MW", "planned P2P trades (A->B: A buys)", optional=True),
    RunFile("soc_plan", "soc_plan.csv", "MWh", "planned SOC, first period end", optional=True),
    RunFile("validation", "validation.csv", "mixed", "plan against AC", optional=True),
    RunFile("manifest", "manifest.json", "", "scenario, versions, status, heartbeat"),
    RunFile("summary", "summary.json", "", "the run's figures (written at the end)"),
)
BY_KEY = {f.key: f for f in FILES}


def recorded_tables() -> dict[str, str]:
    """Recorded quantity -> file, for the tables written step by step from the grid's outputs."""
    return {f.source: f.file for f in FILES if f.source is not None}


def csv_files(optional: bool) -> dict[str, str]:
    """Report key -> CSV file, the optional (optimiser) files or the others."""
    return {f.key: f.file for f in FILES if f.file.endswith(".csv") and f.optional == optional}


def json_files() -> dict[str, str]:
    return {f.key: f.file for f in FILES if f.file.endswith(".json")}
