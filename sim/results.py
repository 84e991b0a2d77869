"""Run directory: result files written step by step, manifest and summary.

Every table is a CSV with first column ``time_s`` (seconds since the scenario start) and
last column ``time`` (its clock time), one row per grid step, appended and flushed as the
run goes, so an interrupted run keeps every step already done. The files, their units and
sign conventions are declared in :mod:`sim.schema`: ``steps.csv`` (scalar figures per step;
voltage violations counted against the DSO band, an internal microgrid bus against its own),
the per-bus and per-branch tables, the per-load tables ``load_demand_p_mw.csv``,
``load_served_p_mw.csv`` and ``load_shed_p_mw.csv`` (named as in the net: ``load_b{k}`` at
IEEE bus k, ``{MG}_load``, internal ``{MG}_load.b{k}``; shed = demand - served, by command
and on dark buses alike), the split unit tables (renewables, turbines, storage: one sign
convention each, :func:`sim.run_files.split_units`) beside the mixed ``unit_p_mw.csv`` and
``available_p_mw.csv``, ``net.json`` (written at the start) and, at the end,
``summary.json``, ``schema.json`` and ``results.parquet`` (:mod:`sim.run_files`).

Load accounting: ``steps.csv`` holds ``load_demand_mw``, ``load_served_mw``,
``load_unserved_mw``, ``load_not_computed_mw`` and, per priority tier t
(``networks/data/load_tiers.csv``; a lumped microgrid load is tier 2, an internal one its
bus's tier), ``tier{t}_demand_mw``, ``tier{t}_served_mw``, ``tier{t}_shed_mw``. A step whose
power flow did not converge has served, unserved, shed and every per-load served/shed cell
empty, and its whole demand is ``load_not_computed_mw`` (0 otherwise), so that
demand = served + unserved + not computed holds for every step and every run;
:func:`sim.results_figures.summarise` checks it (``energy_not_computed_mwh`` in ``summary.json``).

Manifest: ``status`` is ``running`` while the run goes, then ``completed``,
``completed_with_failed_power_flows`` (some power flow did not converge), ``interrupted``
(Ctrl-C) or ``failed`` (an error); ``pid``, ``host`` and ``heartbeat`` (UTC, rewritten at every
step) let :func:`sim.run_state.run_state` tell a live run from one whose process was killed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import socket
import time
from importlib import metadata
from pathlib import Path

from mgcosim.networks.ieee33 import build_ieee33, internal_bus_name
from mgcosim.scenarios.loader import Scenario
from mgcosim.sim.accounting import count_outside, count_outside_bands, extremes, step_costs
from mgcosim.sim.results_figures import summarise, timing_figures
from mgcosim.sim.run_files import (
    clock_time,
    describe_run,
    element_index,
    read_table,
    save_net,
    split_units,
    unit_kinds,
    write_long_table,
)
from mgcosim.sim.run_state import STATUS_COMPLETED, STATUS_FAILED_FLOWS, utc_now
from mgcosim.sim.schema import DATETIME_COLUMN, FILES, TIME_COLUMN, recorded_tables

TABLES = recorded_tables()  # recorded quantity -> file (sim.schema)
EXTRA_FILES = [f.file for f in FILES if f.source is None and f.key != "manifest"]
__all__ = ["RunWriter", "read_table"]  # read_table: sim.run_files
PACKAGES = (
    "mgcosim",
    "mosaik",
    "mosaik-api-v3",
    "pandapower",
    "pyomo",
    "highspy",
    "numpy",
    "pandas",
    "pyarrow",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the stack, for the manifest."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json(path: Path, content: dict) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=2, default=str))
    os.replace(tmp, path)


class RunWriter:
    """Appends one row per step to every table and keeps the manifest current."""

    def __init__(self, out_dir: Path, scenario: Scenario) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.scenario = scenario
        self.files: dict[str, tuple] = {}
        self.steps_done = 0
        self.plans_done: set[int] = set()
        self.v_bands = voltage_bands(scenario)
        self.t0 = time.perf_counter()
        self.manifest = {
            "scenario_name": scenario.name,
            "scenario_path": str(scenario.path) if scenario.path else None,
            "scenario": scenario.raw,
            "start": scenario.start.isoformat(),
            "physical_step_s": scenario.physical_step_s,
            "controller_step_s": scenario.controller_step_s,
            "duration_s": scenario.duration_s,
            "steps_expected": scenario.n_steps,
            "seed": scenario.seed,
            "controller": scenario.controller,
            "versions": package_versions(),
            "status": "running",
            "steps_done": 0,
            "wall_time_s": None,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_utc": utc_now(),
            "heartbeat": utc_now(),
        }
        for name in list(TABLES.values()) + EXTRA_FILES:
            (self.out_dir / name).unlink(missing_ok=True)
        net = run_net(scenario, self.out_dir)
        save_net(net, self.out_dir / "net.json")
        self.unit_kinds = unit_kinds(net)
        self.elements = element_index(net)
        write_json(self.out_dir / "manifest.json", self.manifest)

    def _append(self, file_name: str, time_s: int, row: dict) -> None:
        if file_name not in self.files:
            handle = open(self.out_dir / file_name, "w", newline="")  # noqa: SIM115
            columns = [TIME_COLUMN, *row.keys(), DATETIME_COLUMN]
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            self.files[file_name] = (handle, writer)
        handle, writer = self.files[file_name]
        clock = clock_time(self.scenario.start, time_s)
        writer.writerow(
            {TIME_COLUMN: time_s, **{k: _cell(v) for k, v in row.items()}, DATETIME_COLUMN: clock}
        )
        handle.flush()

    def write_step(
        self,
        time_s: int,
        grid: dict,
        setpoints: dict,
        available: dict,
        plan_info: dict | None = None,
    ) -> None:
        """Record one grid step: the tables, the plan (once per plan) and the validation."""
        tables = dict(grid, setpoints_mw=setpoints, available_p_mw=available)
        tables["load_shed_p_mw"] = shed_p_mw(grid)
        tables |= split_units(grid.get("unit_p_mw") or {}, available, self.unit_kinds)
        for attr, file_name in TABLES.items():
            if tables.get(attr):
                self._append(file_name, time_s, tables[attr])
        info = plan_info or {}
        self._append("steps.csv", time_s, self.step_row(time_s, grid, available, info))
        if info.get("plan_time_s") is not None and info["plan_time_s"] not in self.plans_done:
            self.write_plan(info)
        if "vm_pu" in info:
            self._append("validation.csv", time_s, validation_row(grid, info, self.scenario))
        self.steps_done += 1
        self.manifest.update(
            steps_done=self.steps_done,
            wall_time_s=round(time.perf_counter() - self.t0, 3),
            heartbeat=utc_now(),
        )
        write_json(self.out_dir / "manifest.json", self.manifest)

    def write_plan(self, info: dict) -> None:
        """One controller step: its plan figures, ADMM history, trades and planned SOC."""
        t = int(info["plan_time_s"])
        self.plans_done.add(t)
        agents = ["DSO", *(mg.name for mg in self.scenario.data.microgrids)]
        comms = self.scenario.communication is not None
        self._append("plans.csv", t, plan_row(info, agents, comms))
        self._append("timings.csv", t, {key: info.get(key, "") for key in PLAN_TIMINGS})
        for row in info.get("history", []):
            self._append("admm_history.csv", t, row)
        if info.get("trades_mw"):
            self._append("p2p_trades.csv", t, info["trades_mw"])
        if info.get("soc_end_mwh"):
            self._append("soc_plan.csv", t, info["soc_end_mwh"])

    def step_row(self, time_s: int, grid: dict, available: dict, info: dict) -> dict:
        """Scalar figures of one step; costs as rates (CNY/h), integrated by
        :func:`sim.results_figures.summarise`."""
        data = self.scenario.data
        vm = grid.get("vm_pu", {})
        loading = {k: v for k, v in grid.get("loading_percent", {}).items()}
        vmin, vmin_bus = extremes(vm, "min")
        vmax, vmax_bus = extremes(vm, "max")
        lmax, lmax_branch = extremes(loading, "max")
        hour = self.scenario.start.hour + self.scenario.start.minute / 60 + time_s / 3600
        units = grid.get("unit_p_mw", {})
        row = {
            "converged": grid.get("converged"),
            "p_loss_mw": grid.get("p_loss_mw"),
            "p_substation_mw": grid.get("p_substation_mw"),
            "q_substation_mvar": grid.get("q_substation_mvar"),
            "vm_min_pu": vmin,
            "vm_min_bus": vmin_bus,
            "vm_max_pu": vmax,
            "vm_max_bus": vmax_bus,
            "loading_max_percent": lmax,
            "loading_max_branch": lmax_branch,
            "n_v_violations": count_outside_bands(
                vm, self.v_bands, data.dso.v_min_pu, data.dso.v_max_pu
            ),
            "n_overloads": count_outside(loading, -math.inf, 100.0),
            "load_demand_mw": grid.get("load_demand_mw"),
            "load_served_mw": grid.get("load_served_mw"),
            "load_unserved_mw": grid.get("load_unserved_mw"),
            "load_not_computed_mw": grid.get("load_not_computed_mw"),
            **tier_columns(grid),
            "wind_avail_mw": sum(v for k, v in available.items() if k.endswith("_wind")),
            "wind_used_mw": sum(v for k, v in units.items() if k.endswith("_wind")),
            "pv_avail_mw": sum(v for k, v in available.items() if k.startswith("PV")),
            "pv_used_mw": sum(v for k, v in units.items() if k.startswith("PV")),
            "active_faults": ";".join(grid.get("active_faults") or []),
            "islands": ";".join(grid.get("islands") or []),
            "islands_collapsed": ";".join(grid.get("islands_collapsed") or []),
            "loads_shed_ufls": ";".join(grid.get("loads_shed_ufls") or []),
        }
        costs = step_costs(
            units,
            grid.get("exchange_p_mw", {}),
            grid.get("p_loss_mw", math.nan),
            hour,
            1.0,
            data,
            info.get("trades_mw"),
        )
        row.update({f"{name}_per_h": value for name, value in costs.items()})
        return row

    def close(self, status: str) -> dict:
        """Close the tables, write the summary and the final manifest; return the summary."""
        for handle, _ in self.files.values():
            handle.close()
        self.files = {}
        summary = summarise(self.out_dir, self.scenario.physical_step_s) if self.steps_done else {}
        if summary:
            write_json(self.out_dir / "summary.json", summary)
            write_json(self.out_dir / "schema.json", describe_run(self.out_dir, self.elements))
            write_long_table(self.out_dir, self.out_dir / "results.parquet")
        if status == STATUS_COMPLETED and summary.get("n_not_converged", 0) > 0:
            status = STATUS_FAILED_FLOWS
        self.manifest.update(
            status=status,
            n_not_converged=summary.get("n_not_converged"),
            timing=timing_figures(self.out_dir),
            wall_time_s=round(time.perf_counter() - self.t0, 3),
            heartbeat=utc_now(),
        )
        write_json(self.out_dir / "manifest.json", self.manifest)
        return summary


def run_net(scenario: Scenario, out_dir: Path):
    """The net the grid simulates: the scenario's, with the mobile storage the world placed
    (``mess_placement.json``, written before the recorder starts)."""
    from mgcosim.sim.mess import with_mess

    placement = out_dir / "mess_placement.json"
    if placement.is_file():
        scenario = with_mess(scenario, json.loads(placement.read_text())["buses"])
    return build_ieee33(scenario.data, scenario.microgrid_networks())


def shed_p_mw(grid: dict) -> dict[str, float]:
    """Load shed per load: demand - served (NaN where the power flow did not converge)."""
    served = grid.get("load_served_p_mw") or {}
    return {
        name: d - served.get(name, math.nan)
        for name, d in (grid.get("load_demand_p_mw") or {}).items()
    }


def tier_columns(grid: dict) -> dict[str, float]:
    """``tier{t}_demand_mw``, ``tier{t}_served_mw``, ``tier{t}_shed_mw`` of one step."""
    demand, served = grid.get("tier_demand_mw") or {}, grid.get("tier_served_mw") or {}
    out = {}
    for tier, d in demand.items():
        s = served.get(tier, math.nan)
        out |= {
            f"tier{tier}_demand_mw": d,
            f"tier{tier}_served_mw": s,
            f"tier{tier}_shed_mw": d - s,
        }
    return out


def voltage_bands(scenario: Scenario) -> dict[str, tuple[float, float]]:
    """Own voltage band of each internal microgrid bus, by its label (the DSO's elsewhere)."""
    networks = scenario.microgrid_networks() or {}
    return {
        internal_bus_name(name, bus): (bus.v_min_pu, bus.v_max_pu)
        for name, network in networks.items()
        for bus in network.buses
    }


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


PLAN_SCALARS = (
    "mode",
    "status",
    "controller",
    "objective_cny",
    "central_objective_cny",
    "gap_pct",
    "converged",
    "outer_iterations",
    "inner_iterations",
    "admm_messages",
    "admm_bytes",
    "topology_status",
    "mip_gap",
    "mip_nodes",
    "mip_start",
    "p_loss_mw",
)
# with a [communication] table only (controllers.comms; CommStats.record)
PLAN_COMMS = ("comm_lost", "comm_late", "comm_stale", "comm_finish_retries")
PLAN_TIMINGS = ("admm_time_s", "central_time_s", "restoration_time_s", "wall_time_s")


def plan_row(info: dict, agents: list[str], comms: bool = False) -> dict:
    """The scalar figures of one plan, agents' costs and open branches flattened; ``comms``:
    with the message-fault counts (a scenario with a ``[communication]`` table).

    The columns are fixed (a fallback plan has empty cells), so every row fits the header.
    """
    keys = PLAN_SCALARS + PLAN_COMMS if comms else PLAN_SCALARS
    row = {key: info.get(key, "") for key in keys}
    row["open_branches"] = ";".join(str(b) for b in info.get("open_branches", []))
    costs = info.get("costs_cny") or {}
    row |= {f"cost_{agent}_cny": costs.get(agent, "") for agent in agents}
    return row


def validation_row(grid: dict, info: dict, scenario: Scenario) -> dict:
    """Optimiser's first-period expectation next to this step's AC power flow."""
    v_model = info.get("vm_pu", {})
    v_ac = grid.get("vm_pu", {})
    diffs = {
        b: abs(v_model[b] - v_ac[b])
        for b in v_model
        if b in v_ac and v_ac[b] is not None and not math.isnan(v_ac[b])
    }
    bus, dv = max(diffs.items(), key=lambda kv: kv[1]) if diffs else ("", math.nan)
    losses_ac = ieee_losses_mw(grid)
    dso = scenario.data.dso
    v_viol = count_outside(
        {b: v for b, v in v_ac.items() if b.isdigit()}, dso.v_min_pu, dso.v_max_pu
    )
    overloads = count_outside(grid.get("loading_percent", {}), -math.inf, 100.0)
    return {
        "max_dv_pu": dv,
        "max_dv_bus": bus,
        "p_loss_model_mw": info.get("p_loss_mw", math.nan),
        "p_loss_ac_mw": losses_ac,
        "loss_error_mw": losses_ac - info.get("p_loss_mw", math.nan),
        "ac_v_violations": v_viol,
        "ac_overloads": overloads,
        "unanticipated_violation": int(v_viol + overloads > 0),
    } | plan_ac_columns(info.get("plan_ac") or {})


def plan_ac_columns(check: dict) -> dict:
    """The model's own error: an AC power flow of the plan's first-period injections
    (:class:`controllers.plan_check.PlanACCheck`), apart from the forecast error that the
    columns above (plan against the realised step) include. NaN where no check was made."""
    ac_mw = check.get("ac_loss_mw", math.nan)
    return {
        "plan_ac_max_dv_pu": check.get("v_error_max_pu", math.nan),
        "plan_ac_loss_mw": ac_mw,
        "plan_ac_loss_error_mw": ac_mw - check.get("model_loss_mw", math.nan),
        "plan_ac_v_violations": check.get("ac_v_violations", math.nan),
    }


def ieee_losses_mw(grid: dict) -> float:
    """AC losses over the 37 IEEE branches (the DSO model's scope)."""
    value = grid.get("p_loss_ieee_mw")
    return math.nan if value is None else float(value)
