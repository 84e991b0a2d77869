"""Warnings about a valid scenario that will run badly: printed by ``mgcosim validate`` / ``run``.

:func:`scenario_warnings` runs one AC power flow at the run's peak demand with every
microgrid at full output (:func:`networks.checks.full_output_flow`). When even that does
not converge, or loads a branch beyond :data:`networks.checks.LOADING_LIMIT_PERCENT` or
leaves a bus below :data:`networks.checks.VM_LIMIT_PU`, the network cannot carry the demand
and the run's power flows will fail or be far out of bounds. The warning names the file and
field of the likely cause and the fix: the microgrid at the worst bus or PCC line, else the
one that imports the most at full output, else the DSO loads. A warning does not stop a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mgcosim.networks.checks import (
    LOADING_LIMIT_PERCENT,
    VM_LIMIT_PU,
    FullOutputFlow,
    full_output_flow,
    full_output_import_mw,
)
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import DATA_DIR, MicrogridParams
from mgcosim.scenarios.loader import Scenario


@dataclass(frozen=True)
class _Peak:
    """The physical step of the run with the largest total demand, and the shapes there."""

    step: int
    demand_pu: dict[str, float]  # load name -> per unit of its nominal power
    pv_pu: dict[str, float]  # PV unit -> per unit of its rating


def scenario_warnings(scenario: Scenario) -> list[str]:
    """One-line warnings (file, field, fix) about ``scenario``; empty when none."""
    net = build_ieee33(scenario.data)
    nominal_mw = dict(zip(net.load.name, net.load.p_nom_mw.astype(float), strict=True))
    peak = _peak(scenario, nominal_mw)
    flow = full_output_flow(net, scenario.data.microgrids, peak.demand_pu, peak.pv_pu)
    if flow.carried:
        return []
    return [_capacity_warning(scenario, peak, flow)]


def _column(table: pd.DataFrame, unit: str, generic: str) -> str:
    return f"{unit}_pu" if f"{unit}_pu" in table.columns else generic


def _peak(scenario: Scenario, nominal_mw: dict[str, float]) -> _Peak:
    n, start = scenario.n_steps, scenario.start
    start_h = start.hour + start.minute / 60 + start.second / 3600
    step_h = scenario.physical_step_s / 3600

    def shape(unit: str, generic: str) -> np.ndarray:
        return scenario.profiles.shape_pu(unit, generic, start_h, step_h, n)

    loads = {name: shape(name, "load_pu") for name in nominal_mw}
    total_mw = sum(nominal_mw[name] * values for name, values in loads.items())
    k = int(np.argmax(total_mw))
    pv = {u.name: float(shape(u.name, "pv_pu")[k]) for u in scenario.data.pv}
    return _Peak(k, {name: float(values[k]) for name, values in loads.items()}, pv)


def _capacity_warning(scenario: Scenario, peak: _Peak, flow: FullOutputFlow) -> str:
    mg = _microgrid_at_fault(scenario, peak, flow)
    if mg is None:
        file, field, value = _dso_load_field(scenario, flow)
        fix = "lower the DSO load shapes, or undo overrides that weaken the network"
    elif _import_mw(mg, peak) > 0:
        file, field, value = _microgrid_load_field(scenario, mg, peak)
        fix = (
            f"lower {mg.name}'s load, or raise its pcc_max_i_ka and its turbine, storage and "
            "wind ratings"
        )
    else:  # it exports at full output: its PCC line is the bottleneck
        file, field, value = _microgrid_field(scenario, mg, "pcc_max_i_ka", "kA")
        fix = f"raise {mg.name}'s pcc_max_i_ka, or lower its pcc_p_max_mw"
    t_h = peak.step * scenario.physical_step_s / 3600
    return (
        f"{file}: field '{field}' = {value}: the network cannot carry the peak demand "
        f"(t = {t_h:g} h) even with every microgrid at full output (AC power flow: "
        f"{_symptom(flow)}). Fix: {fix}"
    )


def _symptom(flow: FullOutputFlow) -> str:
    if not flow.converged:
        return "does not converge"
    parts = []
    if flow.loading_max_percent > LOADING_LIMIT_PERCENT:
        parts.append(f"{flow.loading_max_branch} at {flow.loading_max_percent:.0f} % of its rating")
    if flow.vm_min_pu < VM_LIMIT_PU:
        parts.append(f"{flow.vm_min_bus} at {flow.vm_min_pu:.2f} pu")
    return ", ".join(parts)


def _microgrid_at_fault(
    scenario: Scenario, peak: _Peak, flow: FullOutputFlow
) -> MicrogridParams | None:
    """The microgrid at the worst bus or PCC line, else the one importing the most at full
    output (None when none imports: the DSO loads are the cause)."""
    worst = {flow.vm_min_bus, flow.loading_max_branch.removesuffix("_pcc")}
    mgs = scenario.data.microgrids
    at_worst = [mg for mg in mgs if mg.name in worst]
    if at_worst:
        return at_worst[0]
    importing = max(mgs, key=lambda mg: _import_mw(mg, peak))
    return importing if _import_mw(importing, peak) > 0 else None


def _import_mw(mg: MicrogridParams, peak: _Peak) -> float:
    return full_output_import_mw(mg, peak.demand_pu[f"{mg.name}_load"] * mg.load_p_peak_mw)


def _microgrid_load_field(
    scenario: Scenario, mg: MicrogridParams, peak: _Peak
) -> tuple[str, str, str]:
    """(file, field, value) of the microgrid's load: its profile column if the scenario's
    CSV scales it above 1, else its ``load_p_peak_mw``."""
    table, pu = scenario.profiles.table, peak.demand_pu[f"{mg.name}_load"]
    if scenario.profiles.source is not None and pu > 1:
        column = _column(table, f"{mg.name}_load", "load_pu")
        return str(scenario.profiles.source), f"profiles.source[{column}]", f"{pu:g} pu"
    return _microgrid_field(scenario, mg, "load_p_peak_mw", "MW")


def _microgrid_field(
    scenario: Scenario, mg: MicrogridParams, key: str, unit: str
) -> tuple[str, str, str]:
    """(file, field, value) of a microgrid parameter: the scenario's override, else the row
    of ``microgrids.csv``."""
    overrides = scenario.raw.get("microgrids", {}).get(mg.name, {})
    value = f"{getattr(mg, key):g} {unit}"
    if key in overrides:
        return _scenario_file(scenario), f"microgrids.{mg.name}.{key}", value
    return str(DATA_DIR / "microgrids.csv"), f"{mg.name}.{key}", value


def _dso_load_field(scenario: Scenario, flow: FullOutputFlow) -> tuple[str, str, str]:
    """(file, field, value) of the DSO load at the worst bus: its column of the scenario's
    profile CSV, else the scenario's profile source."""
    source = scenario.profiles.source
    if source is None:
        return _scenario_file(scenario), "profiles.source", '"builtin"'
    table = scenario.profiles.table
    column = _column(table, f"load_b{flow.vm_min_bus.removeprefix('bus ')}", "load_pu")
    return str(source), f"profiles.source[{column}]", f"peak {table[column].max():g} pu"


def _scenario_file(scenario: Scenario) -> str:
    return str(scenario.path) if scenario.path is not None else "<string>"
