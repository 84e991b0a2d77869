"""Report section: the optimiser's first-period expectation against the AC power flow of each
step (voltages, losses, SOC, violations), with the one loss-error definition of the run
(:func:`sim.results_figures.relative_loss_error_pct`, also the summary's)."""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mgcosim.sim.report_base import (
    LOSS_ERROR_LABEL,
    MAX_TABLE_ROWS,
    PLAN_PERIOD_S,
    RunData,
    esc,
    html_figure,
    html_section,
    html_table,
    missing,
    new_figure,
    num,
    rounded,
    step_series,
    time_axis,
    timestamp,
    x_of,
    xs,
)
from mgcosim.sim.results_figures import relative_loss_error_pct


def section_validation(run: RunData) -> str | None:
    """The optimiser's first-period expectation against the AC power flow of each step."""
    val = run.validation
    if missing(val):
        return None
    unexpected = num(val, "unanticipated_violation").fillna(0) > 0
    n_bad = int(unexpected.sum())
    what = (
        "steps with AC voltage violations or overloads the optimiser did not expect "
        f"(of {len(val)} steps run on an optimiser plan)"
    )
    if n_bad:
        body = f'<p class="flag">&#9888; {n_bad} {esc(what)}.</p>'
        rows = [
            (
                t / 3600.0,
                timestamp(run, t),
                int(num(val, "ac_v_violations").get(t, 0) or 0),
                int(num(val, "ac_overloads").get(t, 0) or 0),
                rounded(num(val, "max_dv_pu").get(t, math.nan), 5),
            )
            for t in val.index[unexpected.to_numpy()][:MAX_TABLE_ROWS]
        ]
        body += html_table(
            ["time [h]", "timestamp", "bus voltage violations", "overloads", "max |ΔV| [pu]"],
            rows,
        )
    else:
        body = f'<p class="ok">&#10004; 0 {esc(what)}.</p>'
    body += html_figure(
        _validation_figure(run, val),
        "optimiser vs AC power flow",
        "Optimiser (DistFlow model, first plan period) against the AC power flow of each "
        "physical step. SOC: lines realised (start of step), points planned for the end of "
        "each plan's first period.",
    )
    body += _validation_table(run, val)
    return html_section("validation", "Optimiser vs AC power flow", body)


def _validation_figure(run: RunData, val: pd.DataFrame) -> Figure:
    soc_ok = run.soc is not None and not run.soc.empty
    plan_ok = run.soc_plan is not None and not run.soc_plan.empty
    viol = num(val, "ac_v_violations").fillna(0) + num(val, "ac_overloads").fillna(0)
    n_panels = 2 + int(soc_ok or plan_ok) + int(bool((viol > 0).any()))
    fig = new_figure(10, 1.0 + 2.1 * n_panels)
    axes = list(fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0])
    ax = axes.pop(0)
    ax.step(*step_series(run, val["max_dv_pu"]), where="post", color="#9467bd")
    ax.set_ylabel("max |V_opt − V_ac| [pu]")
    ax.grid(alpha=0.3)
    ax = axes.pop(0)
    for col, label, style in (
        ("p_loss_model_mw", "model (DistFlow)", "--"),
        ("p_loss_ac_mw", "AC power flow", "-"),
    ):
        if col in val.columns:
            ax.step(*step_series(run, val[col]), where="post", linestyle=style, label=label)
    ax.set_ylabel("IEEE-branch losses [MW]")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    if soc_ok or plan_ok:
        _soc_plan_axes(run, axes.pop(0))
    if axes:
        ax = axes.pop(0)
        x, _ = step_series(run, val.iloc[:, 0])
        width = np.diff(x)
        v = num(val, "ac_v_violations").fillna(0).to_numpy()
        o = num(val, "ac_overloads").fillna(0).to_numpy()
        ax.bar(x[:-1], v, width=width, align="edge", color="#d62728", label="bus voltage")
        ax.bar(x[:-1], o, width=width, bottom=v, align="edge", color="#ff7f0e", label="overload")
        ax.set_ylabel("AC violations")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
    all_axes = fig.axes
    time_axis(all_axes[-1], run)
    return fig


def _soc_plan_axes(run: RunData, ax: Axes) -> None:
    colours = matplotlib.colormaps["tab10"].colors
    real, plan = run.soc, run.soc_plan
    cols = list(real.columns) if real is not None else []
    if plan is not None:
        cols += [c for c in plan.columns if c not in cols]
    for i, col in enumerate(cols):
        colour = colours[i % 10]
        if real is not None and col in real.columns:
            ax.plot(xs(run, real), num(real, col), color=colour, linewidth=1.4, label=col)
        if plan is not None and col in plan.columns:
            ax.scatter(
                x_of(run, plan.index.to_numpy(float) + PLAN_PERIOD_S),
                num(plan, col),
                color=colour,
                edgecolor="black",
                marker="D",
                s=28,
                zorder=3,
            )
    handles, _ = ax.get_legend_handles_labels()
    handles.append(
        Line2D(
            [],
            [],
            marker="D",
            linestyle="",
            color="white",
            markeredgecolor="black",
            label="planned (end of first period)",
        )
    )
    ax.legend(handles=handles, loc="best", fontsize="small")
    ax.set_ylabel("state of charge [MWh]")
    ax.grid(alpha=0.3)


def _soc_plan_errors(run: RunData) -> dict[str, float]:
    """Largest |planned - realised| SOC at the end of each plan's first period, per storage."""
    real, plan = run.soc, run.soc_plan
    if real is None or plan is None:
        return {}
    out = {}
    ends = plan.index + PLAN_PERIOD_S
    matched = [t for t in ends if t in real.index]
    if not matched:
        return {}
    for col in plan.columns:
        if col in real.columns:
            planned = num(plan, col).loc[[t - PLAN_PERIOD_S for t in matched]].to_numpy()
            realised = num(real, col).loc[matched].to_numpy()
            out[col] = float(np.nanmax(np.abs(planned - realised)))
    return out


def _validation_table(run: RunData, val: pd.DataFrame) -> str:
    rows: list[tuple[str, Any, str]] = []
    dv = num(val, "max_dv_pu")
    if dv.notna().any():
        t = dv.idxmax()
        bus = val["max_dv_bus"].get(t) if "max_dv_bus" in val.columns else None
        where = f" (bus {bus}, {timestamp(run, t)})" if bus is not None and pd.notna(bus) else ""
        rows.append((f"max |V_opt − V_ac|{where}", f"{dv.max():.5f}", "pu"))
        rows.append(("mean max |V_opt − V_ac|", f"{dv.mean():.5f}", "pu"))
    err = num(val, "loss_error_mw")
    if err.notna().any():
        rows.append(("loss error AC − model, mean", f"{err.mean():.5f}", "MW"))
        rows.append(("loss error AC − model, max |·|", f"{err.abs().max():.5f}", "MW"))
        both = val.assign(loss_error_mw=err, p_loss_ac_mw=num(val, "p_loss_ac_mw"))
        pct = relative_loss_error_pct(both)
        if math.isfinite(pct):
            rows.append((LOSS_ERROR_LABEL, f"{pct:.2f}", "%"))
    for col, e in _soc_plan_errors(run).items():
        text = f"{e:.4f}" if e >= 1e-4 else "< 0.0001"
        rows.append((f"SOC planned − realised, max |·|, {col}", text, "MWh"))
    return html_table(["figure", "value", "unit"], rows) if rows else ""
