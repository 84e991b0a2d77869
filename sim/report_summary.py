"""Summary and comparison sections of the report.

The summary is ``summary.json`` as a table of label, value and unit: each known figure has a
label, a unit and a number of decimals (:data:`SUMMARY_FIGURES`); an unknown key is shown
with a label made from its name and the unit its suffix gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mgcosim.sim.report_base import (
    LOSS_ERROR_LABEL,
    RunData,
    esc,
    html_figure,
    html_section,
    html_table,
    new_figure,
    number,
    rounded,
    timestamp,
)
from mgcosim.sim.run_state import STATUS_COMPLETED, STATUS_FAILED_FLOWS
from mgcosim.sim.schema import SUMMARY_KEY_FIGURES


@dataclass(frozen=True)
class Shown:
    """How one summary figure is shown."""

    label: str
    unit: str = ""
    digits: int = 3


SUMMARY_FIGURES: dict[str, Shown] = {
    "steps": Shown("steps recorded", "steps", 0),
    "n_not_converged": Shown("power flows not converged", "steps", 0),
    "all_power_flows_converged": Shown("all power flows converged"),
    "energy_demand_mwh": Shown("load demand", "MWh"),
    "energy_served_mwh": Shown("load served", "MWh"),
    "energy_unserved_mwh": Shown("load not served (shed or cut off)", "MWh"),
    "energy_not_computed_mwh": Shown("demand not computed (power flow failed)", "MWh"),
    "energy_losses_mwh": Shown("network losses", "MWh"),
    "energy_substation_mwh": Shown("import through the substation", "MWh"),
    "wind_available_mwh": Shown("wind available", "MWh"),
    "wind_used_mwh": Shown("wind used", "MWh"),
    "pv_used_mwh": Shown("PV used", "MWh"),
    "vm_min_pu": Shown("lowest bus voltage", "pu", 4),
    "vm_max_pu": Shown("highest bus voltage", "pu", 4),
    "loading_max_percent": Shown("highest branch loading", "%", 1),
    "n_voltage_violations": Shown("bus-steps outside the voltage band", "bus-steps", 0),
    "n_overloads": Shown("branch-steps overloaded", "branch-steps", 0),
    "cost_mt_cny": Shown("cost: micro gas turbines", "CNY", 2),
    "cost_ess_cny": Shown("cost: storage", "CNY", 2),
    "cost_grid_cny": Shown("cost: substation import", "CNY", 2),
    "cost_loss_cny": Shown("cost: network losses", "CNY", 2),
    "cost_total_cny": Shown("cost: total", "CNY", 2),
    "horizons": Shown("optimiser plans (horizons)", "plans", 0),
    "n_fallbacks": Shown("plans fallen back to the rule-based controller", "plans", 0),
    "n_admm_not_converged": Shown("plans with ADMM not converged", "plans", 0),
    "admm_gap_pct_median": Shown("ADMM gap to the centralised optimum, median", "%", 3),
    "admm_gap_pct_max": Shown("ADMM gap to the centralised optimum, max", "%", 3),
    "admm_outer_iterations_median": Shown("ADMM outer iterations, median", "iterations", 1),
    "admm_inner_iterations_median": Shown("ADMM inner iterations, median", "iterations", 1),
    "admm_time_s_median": Shown("ADMM solve time, median", "s", 2),
    "central_time_s_median": Shown("centralised solve time, median", "s", 2),
    "restoration_time_s_median": Shown("restoration solve time, median", "s", 2),
    "controller_time_s_total": Shown("controller time, total", "s", 1),
    "ac_max_dv_pu": Shown("optimiser vs AC: largest |V_opt − V_ac|", "pu", 4),
    "ac_loss_error_mw_mean": Shown("optimiser vs AC: loss error AC − model, mean", "MW", 4),
    "ac_loss_error_mw_max_abs": Shown("optimiser vs AC: loss error AC − model, max |·|", "MW", 4),
    "ac_loss_error_pct_mean": Shown(f"optimiser vs AC: {LOSS_ERROR_LABEL}", "%", 2),
    "plan_ac_max_dv_pu": Shown("plan vs AC of its own injections: largest |V_opt − V_ac|", "pu", 6),
    "plan_ac_loss_error_pct_max_abs": Shown(
        "plan vs AC of its own injections: loss error, max |·|", "%", 3
    ),
    "ac_unanticipated_violation_steps": Shown(
        "steps with AC violations the optimiser did not expect", "steps", 0
    ),
    "plan_ac_violation_steps": Shown(
        "steps whose plan has AC violations at its own injections", "steps", 0
    ),
    "soc_plan_vs_real_max_abs_mwh": Shown("SOC planned − realised, max |·|", "MWh", 4),
}
# the bus and time of the voltage extremes go into the label of their voltage's row
PLACE_KEYS = {
    "vm_min_pu": ("vm_min_bus", "vm_min_time_s"),
    "vm_max_pu": ("vm_max_bus", "vm_max_time_s"),
}
TIER_KEY = re.compile(r"energy_(demand|served|shed)_tier(\w+)_mwh")
UNIT_SUFFIXES = (
    ("_mwh", "MWh"),
    ("_mw", "MW"),
    ("_mvar", "Mvar"),
    ("_pu", "pu"),
    ("_percent", "%"),
    ("_pct", "%"),
    ("_cny", "CNY"),
    ("_s", "s"),
    ("_h", "h"),
)


def figure_of(key: str) -> Shown:
    """How summary key ``key`` is shown (a label made from an unknown key's name)."""
    if key in SUMMARY_FIGURES:
        return SUMMARY_FIGURES[key]
    name, unit = key, ""
    for suffix, u in UNIT_SUFFIXES:
        if key.endswith(suffix):
            name, unit = key.removesuffix(suffix), u
            break
    words = name.removeprefix("n_").replace("_", " ")
    if key.startswith("cost_"):
        words = "cost: " + words.removeprefix("cost ")
    elif key.startswith("n_"):
        words = "number of " + words
    return Shown(words, unit, 2 if unit in ("CNY", "s", "%") else 3)


def format_value(value: Any, digits: int) -> str:
    """A summary value, rounded to ``digits`` decimals ("–" when missing)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        v = rounded(float(value), digits)
        return "–" if v is None else f"{v:,.{digits}f}"
    if value is None or value == "":
        return "–"
    return str(value)


def summary_rows(summary: dict[str, Any], run: RunData) -> list[tuple[str, str, str]]:
    """(label, value, unit) for every figure of ``summary``, in the summary's order; the
    tiers' demand, served and shed energy on one row per tier."""
    placed = {k for keys in PLACE_KEYS.values() for k in keys}
    tiers: dict[str, dict[str, Any]] = {}
    rows: list[tuple[str, str, str]] = []
    for key, value in summary.items():
        if key in placed:
            continue
        tier = TIER_KEY.fullmatch(key)
        if tier:
            if tier.group(2) not in tiers:
                tiers[tier.group(2)] = {}
                rows.append((f"tier {tier.group(2)}", "", "MWh"))  # filled below
            tiers[tier.group(2)][tier.group(1)] = value
            continue
        fig = figure_of(key)
        label = fig.label + _place(summary, key, run)
        rows.append((label, format_value(value, fig.digits), fig.unit))
    for i, (label, _, unit) in enumerate(rows):
        if label.startswith("tier ") and label.removeprefix("tier ") in tiers:
            parts = tiers[label.removeprefix("tier ")]
            value = " / ".join(format_value(parts.get(k), 3) for k in ("demand", "served", "shed"))
            rows[i] = (f"{label}: demand / served / shed", value, unit)
    return rows


def _place(summary: dict[str, Any], key: str, run: RunData) -> str:
    if key not in PLACE_KEYS:
        return ""
    bus_key, time_key = PLACE_KEYS[key]
    bus, t = summary.get(bus_key), number(summary, time_key)
    parts = [f"bus {bus}"] if bus not in (None, "") else []
    if t is not None and t >= 0:
        parts.append(timestamp(run, t) if run.start is not None else f"{t / 3600:g} h")
    return f" ({', '.join(parts)})" if parts else ""


def section_summary(run: RunData) -> str | None:
    """The run's figures (summary.json) as label, value and unit."""
    if not run.summary:
        return None
    table = html_table(["figure", "value", "unit"], summary_rows(run.summary, run))
    return html_section("summary", "Summary", table)


# -------------------------------------------------------------------- comparison


def section_comparison(run: RunData) -> str | None:
    """Daily cost terms of this run and of ``run.compare`` side by side."""
    other = run.compare
    if other is None:
        return None
    this_s, other_s = run.summary or {}, other.summary or {}
    names = (
        f"this run ({run.controller})",
        f"{other.controller} ({other.run_dir.name})",
    )
    keys = [k for k in this_s if k.startswith("cost_")]
    keys += [k for k in other_s if k.startswith("cost_") and k not in keys]
    body = _comparison_notes(run, other)
    if keys:
        body += html_figure(_comparison_figure(keys, this_s, other_s, names), "cost comparison")
        body += html_table(
            ["cost term", *names, "difference (this − other)"],
            _comparison_rows(keys, this_s, other_s),
        )
    else:
        body += "<p>No cost figures (summary.json cost_*) to compare.</p>"
    extra = [k for k in SUMMARY_KEY_FIGURES if k in this_s and k in other_s]
    if extra:
        body += html_table(
            ["figure", *names, "difference (this − other)"],
            _comparison_rows(extra, this_s, other_s),
        )
    return html_section("comparison", f"Comparison with {other.controller}", body)


def _comparison_notes(run: RunData, other: RunData) -> str:
    notes = [f"Other run: {other.run_dir}."]
    if other.summary is None:
        notes.append("The other run has no summary.json.")
    m_this, m_other = run.manifest or {}, other.manifest or {}
    for key, label in (
        ("duration_s", "durations"),
        ("start", "starts"),
        ("seed", "seeds"),
        ("scenario_name", "scenarios"),
    ):
        a, b = m_this.get(key), m_other.get(key)
        if key == "duration_s" and isinstance(a, int | float) and isinstance(b, int | float):
            a, b = f"{a / 3600:g} h", f"{b / 3600:g} h"
        if a is not None and b is not None and a != b:
            notes.append(f"The runs differ in their {label} ({a} vs {b}).")
    if m_other and m_other.get("status") not in (STATUS_COMPLETED, STATUS_FAILED_FLOWS):
        notes.append(f"The other run is not completed (status {m_other.get('status')}).")
    return "".join(f'<p class="note">{esc(n)}</p>' for n in notes)


def _comparison_rows(keys: list[str], a: dict, b: dict) -> list[tuple]:
    rows = []
    for key in keys:
        va, vb = number(a, key), number(b, key)
        diff = va - vb if va is not None and vb is not None else None
        shown = figure_of(key)
        label = f"{shown.label} [{shown.unit}]" if shown.unit else shown.label
        values = (format_value(v, shown.digits) for v in (va, vb, diff))
        rows.append((label, *values))
    return rows


def _comparison_figure(keys: list[str], a: dict, b: dict, names: tuple[str, str]) -> Figure:
    fig = new_figure(10, 1.0 + 0.45 * len(keys))
    ax = fig.add_subplot()
    y = np.arange(len(keys))
    for offset, data, name in ((-0.2, a, names[0]), (0.2, b, names[1])):
        values = [number(data, k) for k in keys]
        ax.barh(y + offset, [np.nan if v is None else v for v in values], height=0.4, label=name)
    ax.set_yticks(y, [figure_of(k).label.removeprefix("cost: ") for k in keys])
    ax.invert_yaxis()
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("cost over the run [CNY]")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, axis="x")
    return fig
