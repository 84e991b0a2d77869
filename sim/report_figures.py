"""Report sections on the grid's branches and units: the branch-loading heat map, each unit's
set-point against the power the grid applied, and renewable curtailment over time.

All on clock-time axes (:func:`sim.report_base.time_axis`). Energies weight each row by its
own step length (:func:`sim.report_base.step_hours`), so the irregular steps around a fault
event count for what they lasted.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mgcosim.sim.report_base import (
    RunData,
    branch_key,
    html_figure,
    html_section,
    html_table,
    missing,
    new_figure,
    num,
    rounded,
    step_hours,
    step_series,
    time_axis,
    time_edges,
    timestamp,
)

OVERLOAD_PERCENT = 100.0
SETPOINT_TOL_MW = 1e-3  # applied and set-point closer than this count as equal (1 kW)
PANEL_COLUMNS = 3


def is_renewable(unit: str) -> bool:
    """Wind turbine (``MG1_wind``) or DSO photovoltaic unit (``PV_b18``)."""
    return unit.endswith("_wind") or unit.startswith("PV")


def _numeric(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df[cols].apply(pd.to_numeric, errors="coerce").astype(float)


# ----------------------------------------------------------------- branch loading


def branch_columns(df: pd.DataFrame) -> list[str]:
    """Branch columns in order: IEEE branches 1-37, then the PCC and internal lines."""
    return sorted(df.columns, key=branch_key)


def branch_loading_figure(run: RunData) -> Figure | None:
    """Heat map of every branch's loading over clock time; open branches grey, overloads ×."""
    df = run.branch_loading
    if missing(df):
        return None
    cols = branch_columns(df)
    loading = _numeric(df, cols).to_numpy().T
    open_ = _open_mask(run, df, cols)
    fig = new_figure(10, 1.6 + 0.16 * len(cols))
    ax = fig.add_subplot()
    x_edges = time_edges(run, df)
    finite = loading[np.isfinite(loading)]
    top = max(OVERLOAD_PERCENT, float(finite.max())) if finite.size else OVERLOAD_PERCENT
    cmap = matplotlib.colormaps["YlOrRd"].with_extremes(bad="white")
    mesh = ax.pcolormesh(
        x_edges,
        np.arange(len(cols) + 1) + 0.5,
        np.ma.masked_where(open_ | ~np.isfinite(loading), loading),
        cmap=cmap,
        norm=Normalize(0.0, top),
        shading="flat",
    )
    if open_.any():
        ax.pcolormesh(
            x_edges,
            np.arange(len(cols) + 1) + 0.5,
            np.ma.masked_where(~open_, np.ones_like(loading)),
            cmap=ListedColormap(["#b0b0b0"]),
            shading="flat",
        )
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label("branch loading [%]")
    cbar.ax.axhline(OVERLOAD_PERCENT, color="black", linestyle="--")
    over_b, over_t = np.nonzero(np.nan_to_num(loading) > OVERLOAD_PERCENT)
    centres = (x_edges[:-1] + x_edges[1:]) / 2
    ax.scatter(centres[over_t], over_b + 1, marker="x", color="black", s=14)
    ax.set_yticks(np.arange(1, len(cols) + 1), cols, fontsize=6)
    ax.invert_yaxis()
    ax.set_ylabel("branch (IEEE number, then PCC lines)")
    time_axis(ax, run)
    handles = [
        Patch(color="#b0b0b0", label="open switch"),
        Patch(facecolor="white", edgecolor="grey", label="no result"),
        Line2D([], [], marker="x", color="black", linestyle="", label="over 100 %"),
    ]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False)
    return fig


def _open_mask(run: RunData, df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """True where a branch's switch was open (switch_closed.csv == 0) at that row."""
    mask = np.zeros((len(cols), len(df)), dtype=bool)
    sw = run.switch_closed
    if missing(sw):
        return mask
    states = sw.apply(pd.to_numeric, errors="coerce").reindex(df.index)
    for i, col in enumerate(cols):
        if col in states.columns:
            mask[i] = (states[col] == 0).to_numpy()
    return mask


def section_branch_loading(run: RunData) -> str | None:
    """Branch loading heat map (branches × clock time) and the most loaded branches."""
    fig = branch_loading_figure(run)
    if fig is None:
        return None
    df = run.branch_loading
    loading = _numeric(df, branch_columns(df))
    body = html_figure(
        fig,
        "branch loading heat map",
        "Loading of every branch (current over its rating, AC power flow) at each step. "
        "Grey: switch open; &times;: over 100 %.",
        fig_id="fig-branch-loading",
    )
    peak = loading.max()
    rows = []
    for col in peak.sort_values(ascending=False).index[:5]:
        if math.isfinite(peak[col]):
            t = float(loading[col].idxmax())
            rows.append((col, rounded(peak[col], 1), timestamp(run, t)))
    n_over = int((loading > OVERLOAD_PERCENT).sum().sum())
    body += f"<p>{n_over} branch-steps over {OVERLOAD_PERCENT:g} %. Most loaded branches:</p>"
    body += html_table(["branch", "highest loading [%]", "at"], rows)
    return html_section("branch-loading", "Branch loading", body)


# ------------------------------------------------------------- set-point vs applied


def setpoint_units(run: RunData) -> list[str]:
    """Units with both a controller set-point and an applied power."""
    sp, ap = run.setpoints, run.unit_p
    if missing(sp) or missing(ap):
        return []
    return [c for c in sp.columns if c in ap.columns]


def setpoint_figure(run: RunData) -> Figure | None:
    """One panel per unit: set-point (dashed), applied (solid), available for wind/PV."""
    units = setpoint_units(run)
    if not units:
        return None
    n_rows = math.ceil(len(units) / PANEL_COLUMNS)
    height = 0.9 + 1.7 * n_rows
    fig = Figure(figsize=(11, height))  # fixed margins: a constrained layout of many panels is slow
    fig.subplots_adjust(
        left=0.07, right=0.99, bottom=0.75 / height, top=1 - 0.5 / height, hspace=0.4, wspace=0.2
    )
    axes = fig.subplots(n_rows, PANEL_COLUMNS, sharex=True, squeeze=False)
    sp, ap, avail = run.setpoints, run.unit_p, run.available
    for k, ax in enumerate(axes.flat):
        if k >= len(units):
            ax.set_visible(False)
            continue
        unit = units[k]
        if is_renewable(unit) and avail is not None and unit in avail.columns:
            ax.step(
                *step_series(run, avail[unit]),
                where="post",
                color="#2ca02c",
                linestyle=":",
                linewidth=2,
                zorder=3,
            )
        ax.step(*step_series(run, sp[unit]), where="post", color="#ff7f0e", linestyle="--")
        ax.step(*step_series(run, ap[unit]), where="post", color="#1f77b4")
        ax.set_title(unit, fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if k % PANEL_COLUMNS == 0:
            ax.set_ylabel("P [MW]")
    for ax in axes[-1]:
        time_axis(ax, run)
    fig.supxlabel(axes[-1][0].get_xlabel(), fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("")
    handles = [
        Line2D([], [], color="#ff7f0e", linestyle="--", label="set-point (controller)"),
        Line2D([], [], color="#1f77b4", label="applied (grid)"),
        Line2D([], [], color="#2ca02c", linestyle=":", label="available (wind/PV)"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=3, frameon=False)
    return fig


def setpoint_rows(run: RunData) -> list[tuple]:
    """Per unit: largest |applied − set-point| and the steps where they differ."""
    rows = []
    for unit in setpoint_units(run):
        sp = num(run.setpoints, unit)
        ap = num(run.unit_p, unit).reindex(sp.index)
        diff = (ap - sp).abs()
        kind = "upper limit" if is_renewable(unit) else "set-point"
        rows.append(
            (
                unit,
                kind,
                rounded(float(diff.max()), 4) if diff.notna().any() else None,
                int((diff > SETPOINT_TOL_MW).sum()),
            )
        )
    return rows


def section_setpoints(run: RunData) -> str | None:
    """Controller set-point against the power the grid applied, per unit."""
    fig = setpoint_figure(run)
    if fig is None:
        return None
    body = html_figure(
        fig,
        "set-point against applied power per unit",
        "Set-point: what the controller asked for (unit_setpoint_p_mw.csv); applied: what the "
        "grid simulator applied in the AC power flow (unit_p_mw.csv). Storage &gt; 0 charges. "
        "For wind and PV the set-point is an upper limit: the unit delivers the smaller of it "
        "and the available power. Storage is limited by its state of charge; units on a "
        "de-energised bus deliver nothing.",
        fig_id="fig-setpoints",
    )
    body += html_table(
        ["unit", "set-point is", "max |applied − set-point| [MW]", "steps differing (> 1 kW)"],
        setpoint_rows(run),
    )
    return html_section("setpoints", "Set-point against applied power", body)


# ---------------------------------------------------------------------- curtailment


def curtailment_frames(run: RunData) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(available, applied) per wind/PV unit in MW, on the rows of the available table.

    From the renewable tables (renewable_available_p_mw.csv, renewable_p_mw.csv), else
    the available and applied unit tables, else steps.csv's wind and PV totals.
    """
    for avail, ap in (
        (run.renewable_available, run.renewable_p),
        (run.available, run.unit_p),
    ):
        if avail is None or ap is None:
            continue
        units = [c for c in avail.columns if is_renewable(c) and c in ap.columns]
        if units:
            a = _numeric(avail, units)
            return a, _numeric(ap, units).reindex(a.index)
    steps = run.steps
    if missing(steps):
        return None
    pairs = [(k, f"{k}_avail_mw", f"{k}_used_mw") for k in ("wind", "pv")]
    pairs = [(k, a, u) for k, a, u in pairs if a in steps.columns and u in steps.columns]
    if not pairs:
        return None
    a = pd.DataFrame({k: num(steps, col) for k, col, _ in pairs})
    return a, pd.DataFrame({k: num(steps, col) for k, _, col in pairs})


def curtailment_mw(run: RunData) -> pd.DataFrame | None:
    """Curtailed power per unit: available minus applied (MW, never below zero)."""
    frames = curtailment_frames(run)
    if frames is None:
        return None
    avail, applied = frames
    return (avail - applied).clip(lower=0.0)


def curtailment_figure(run: RunData) -> Figure | None:
    """Top: renewable power available and applied; bottom: curtailment per unit, stacked."""
    frames = curtailment_frames(run)
    if frames is None:
        return None
    avail, applied = frames
    curtailed = (avail - applied).clip(lower=0.0)
    fig = new_figure(10, 5.4)
    ax_top, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.2])
    ax_top.step(
        *step_series(run, avail.sum(axis=1)), where="post", color="#2ca02c", label="available"
    )
    ax_top.step(
        *step_series(run, applied.sum(axis=1)), where="post", color="#1f77b4", label="applied"
    )
    ax_top.set_ylabel("wind + PV [MW]")
    ax_top.legend(loc="best", fontsize="small")
    ax_top.grid(alpha=0.3)
    x = time_edges(run, curtailed)
    bottom = np.zeros(len(curtailed))
    colours = matplotlib.colormaps["tab20"].colors
    for k, unit in enumerate(curtailed.columns):
        y = curtailed[unit].fillna(0.0).to_numpy()
        if not (y > 0).any():
            continue
        ax.bar(
            x[:-1],
            y,
            width=np.diff(x),
            bottom=bottom,
            align="edge",
            label=unit,
            color=colours[k % 20],
            linewidth=0,
        )
        bottom += y
    if not (bottom > 0).any():
        ax.text(0.5, 0.5, "no curtailment", transform=ax.transAxes, ha="center", va="center")
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("curtailed [MW]")
    ax.grid(alpha=0.3)
    time_axis(ax, run)
    return fig


def curtailment_rows(run: RunData) -> list[tuple]:
    """Per unit and in total: available, applied and curtailed energy (MWh), curtailed share."""
    frames = curtailment_frames(run)
    if frames is None:
        return []
    avail, applied = frames
    dt_h = step_hours(run, avail)
    rows = []
    for unit in [*avail.columns, "all"]:
        a = avail.sum(axis=1) if unit == "all" else avail[unit]
        u = applied.sum(axis=1) if unit == "all" else applied[unit]
        e_a = float(np.nansum(a.to_numpy() * dt_h))
        e_c = float(np.nansum((a - u).clip(lower=0.0).to_numpy() * dt_h))
        share = rounded(100.0 * e_c / e_a, 1) if e_a > 0 else None
        rows.append((unit, rounded(e_a, 3), rounded(e_a - e_c, 3), rounded(e_c, 3), share))
    return rows


def section_curtailment(run: RunData) -> str | None:
    """Wind and PV curtailment (available minus applied) over time, and its energy."""
    fig = curtailment_figure(run)
    if fig is None:
        return None
    body = html_figure(
        fig,
        "renewable curtailment over time",
        "Curtailed power = available − applied, per wind turbine and PV unit (the run's "
        "renewable_available_p_mw.csv and renewable_p_mw.csv). It includes what a "
        "controller's upper limit held back and what units on a de-energised bus could "
        "not deliver.",
        fig_id="fig-curtailment",
    )
    body += html_table(
        ["unit", "available [MWh]", "applied [MWh]", "curtailed [MWh]", "curtailed [%]"],
        curtailment_rows(run),
    )
    return html_section("curtailment", "Renewable curtailment", body)
