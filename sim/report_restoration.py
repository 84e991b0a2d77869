"""Restoration section of the report: fault periods, load served, energised buses, islands,
switching and the energies over the faults."""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mgcosim.sim.report_base import (
    AFTER_FAULT_STEPS,
    IEEE_BUSES,
    MAX_TABLE_ROWS,
    TIE_BRANCHES,
    RunData,
    branch_key,
    esc,
    fmt,
    hours,
    html_figure,
    html_section,
    html_table,
    is_storage,
    label_column,
    missing,
    new_figure,
    num,
    plan_statuses,
    restoration_plans,
    rounded,
    split_names,
    step_hours,
    time_axis,
    timestamp,
    x_of,
    xs,
)


def _fault_periods(steps: pd.DataFrame, faulted: np.ndarray, dur_h: np.ndarray) -> list[tuple]:
    """(start h, end h, fault names) of each run of consecutive faulted steps."""
    x = hours(steps)
    faults = label_column(steps, "active_faults").to_numpy()
    periods: list[tuple] = []
    i = 0
    while i < len(x):
        if not faulted[i]:
            i += 1
            continue
        j = i
        names: list[str] = []
        while j < len(x) and faulted[j]:
            names += [n for n in split_names(faults[j]) if n not in names]
            j += 1
        periods.append((x[i], x[j - 1] + dur_h[j - 1], names))
        i = j
    return periods


def _energised(run: RunData, index: pd.Index) -> pd.Series:
    """Number of energised IEEE buses (a voltage in bus_vm_pu.csv) per step."""
    vm = run.bus_vm
    if vm is None:
        return pd.Series(np.nan, index=index)
    cols = [c for c in IEEE_BUSES if c in vm.columns]
    count = vm[cols].apply(pd.to_numeric, errors="coerce").notna().sum(axis=1).astype(float)
    return count.reindex(index)


def _switch_actions(run: RunData) -> dict[float, str]:
    """Per step: branches opened / closed against the previous step (ties marked)."""
    df = run.switch_closed
    if missing(df):
        return {}
    states = df.apply(pd.to_numeric, errors="coerce")
    delta = states.diff()
    out: dict[float, str] = {}
    for t, row in delta.iloc[1:].iterrows():
        parts = []
        for verb, sign in (("opened", -1), ("closed", 1)):
            cols = sorted((c for c in row.index if row[c] == sign), key=branch_key)
            if cols:
                marked = [f"{c} (tie)" if c in TIE_BRANCHES else c for c in cols]
                parts.append(f"{verb} {', '.join(marked)}")
        if parts:
            out[float(t)] = "; ".join(parts)
    return out


def section_restoration(run: RunData) -> str | None:
    """Fault periods: load served, energised buses, islands, switching and energies."""
    steps = run.steps
    if missing(steps) or "active_faults" not in steps.columns:
        return None
    faulted = (label_column(steps, "active_faults") != "").to_numpy()
    if not faulted.any():
        return None
    dur_h = step_hours(run, steps)
    periods = _fault_periods(steps, faulted, dur_h)
    n_buses = _energised(run, steps.index)
    actions = _switch_actions(run)
    plans = restoration_plans(run)
    body = _restoration_intro(periods, plans)
    body += html_figure(
        _restoration_figure(run, steps, periods, n_buses),
        "restoration timeline",
        "Shaded: fault periods (faults in force). Top: load demand and load served, "
        "unserved load filled red, dotted: steps with switching actions. Energised "
        "buses: IEEE buses 1–33 with a power-flow voltage. Islands: microgrids "
        "energising an island (grid-forming), &times; where an island collapsed. "
        "Bottom: storage state of charge at the start of each step.",
    )
    body += "<h3>Energy over the fault periods</h3>" + _restoration_energy(
        run, steps, faulted, dur_h
    )
    body += "<h3>Events per step</h3>" + _restoration_events(
        run, steps, faulted, n_buses, actions, plans
    )
    return html_section("restoration", "Restoration timeline", body)


def _restoration_intro(periods: list[tuple], plans: pd.DataFrame | None) -> str:
    items = [
        f"{', '.join(names) or '?'}: {a:g} h – {b:g} h ({b - a:g} h)" for a, b, names in periods
    ]
    text = f"<p>Fault periods: {esc('; '.join(items))}.</p>"
    if plans is not None:
        status = plan_statuses(plans)
        n_bad = int((status != "optimal").sum())
        wall = num(plans, "wall_time_s")
        detail = (
            f"wall time median {wall.median():.2f} s, max {wall.max():.2f} s"
            if wall.notna().any()
            else "no wall times"
        )
        cls, lead = ("flag", "&#9888; ") if n_bad else ("note", "")
        text += (
            f'<p class="{cls}">{lead}{len(plans)} restoration plan(s), '
            f"{len(plans) - n_bad} optimal; {esc(detail)}.</p>"
        )
    return text


def _restoration_window(steps: pd.DataFrame, periods: list[tuple], end_h: float) -> tuple:
    first, last = periods[0][0], periods[-1][1]
    margin = max(1.0, 0.25 * (last - first))
    start_h = float(hours(steps)[0])
    return max(start_h, first - margin), min(end_h, last + margin)


def _restoration_figure(
    run: RunData, steps: pd.DataFrame, periods: list[tuple], n_buses: pd.Series
) -> Figure:
    islands = label_column(steps, "islands")
    collapsed = label_column(steps, "islands_collapsed")
    mgs: list[str] = list(run.exchange.columns) if run.exchange is not None else []
    for value in (*islands, *collapsed):
        mgs += [n for n in split_names(value) if n not in mgs]
    soc_ok = run.soc is not None and not run.soc.empty and len(run.soc.columns) > 0
    heights = [2.4, 1.5, 0.5 + 0.35 * max(len(mgs), 1)] + ([2.0] if soc_ok else [])
    fig = new_figure(10, 1.0 + sum(heights))
    axes = fig.subplots(len(heights), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    t_s = steps.index.to_numpy(float)
    end_h = (t_s[-1] / 3600.0) + step_hours(run, steps)[-1]
    edges = x_of(run, np.append(t_s, end_h * 3600.0))
    window = _restoration_window(steps, periods, float(end_h))

    def hx(h: float) -> float:  # hours since the start -> time axis
        return float(x_of(run, h * 3600.0))

    for ax in axes:
        for a, b, _ in periods:
            ax.axvspan(hx(a), hx(b), color="#ff7f0e", alpha=0.15, linewidth=0)
        ax.grid(alpha=0.3)

    def stepped(series: pd.Series) -> np.ndarray:
        y = pd.to_numeric(series, errors="coerce").to_numpy(float)
        return np.append(y, y[-1:])

    ax = axes[0]
    demand, served = stepped(num(steps, "load_demand_mw")), stepped(num(steps, "load_served_mw"))
    ax.step(edges, demand, where="post", color="black", label="demand")
    ax.step(edges, served, where="post", color="#2ca02c", label="served")
    gap = np.nan_to_num(demand - served)[:-1]
    short = gap > 1e-6
    bars = ax.bar(
        edges[:-1][short],
        gap[short],
        width=np.diff(edges)[short],
        bottom=served[:-1][short],
        align="edge",
        color="#d62728",
        alpha=0.4,
        linewidth=0,
    )
    for bar in bars:  # let the axis margin show the served line below the bars
        bar.sticky_edges.y.clear()
    for t in _switch_actions(run):
        ax.axvline(hx(t / 3600.0), color="#7f7f7f", linestyle=":", linewidth=1.2)
    ax.set_ylabel("load [MW]")
    handles = [
        Line2D([], [], color="black", label="demand"),
        Line2D([], [], color="#2ca02c", label="served"),
        Patch(color="#d62728", alpha=0.4, label="unserved"),
        Line2D([], [], color="#7f7f7f", linestyle=":", label="switching"),
    ]
    ax.legend(handles=handles, loc="lower left", fontsize="small", ncol=4)
    for a, _, names in periods:
        if window[0] <= a < window[1]:
            ax.annotate(
                ", ".join(names),
                (hx(a), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -2),
                textcoords="offset points",
                va="top",
                fontsize="small",
                color="#a04000",
            )
    ax = axes[1]
    ax.step(edges, stepped(n_buses), where="post", color="#1f77b4")
    ax.set_ylim(-1, len(IEEE_BUSES) + 2)
    ax.set_ylabel("energised buses")
    ax = axes[2]
    colours = matplotlib.colormaps["tab10"].colors
    for k, mg in enumerate(mgs):
        on = islands.map(lambda v, mg=mg: mg in split_names(v)).to_numpy()
        spans = [(edges[i], edges[i + 1] - edges[i]) for i in np.flatnonzero(on)]
        if spans:
            ax.broken_barh(spans, (k - 0.35, 0.7), color=colours[k % 10])
        gone = collapsed.map(lambda v, mg=mg: mg in split_names(v)).to_numpy()
        mid = (edges[:-1] + edges[1:]) / 2
        ax.scatter(mid[gone], np.full(int(gone.sum()), k), marker="x", color="#d62728", zorder=3)
    if not (islands != "").any():
        ax.text(0.5, 0.5, "no islands", transform=ax.transAxes, ha="center", va="center")
    ax.set_yticks(np.arange(len(mgs)), mgs)
    ax.set_ylim(len(mgs) - 0.5, -0.5)
    ax.set_ylabel("islands")
    if soc_ok:
        ax = axes[3]
        soc = run.soc
        for col in soc.columns:
            ax.plot(xs(run, soc), num(soc, col), marker=".", label=col)
        ax.set_ylabel("SOC [MWh]")
        ax.legend(loc="best", fontsize="small")
    axes[0].set_xlim(hx(window[0]), hx(window[1]))
    time_axis(axes[-1], run)
    return fig


def _restoration_energy(
    run: RunData, steps: pd.DataFrame, faulted: np.ndarray, dur_h: np.ndarray
) -> str:
    def energy(series: pd.Series) -> float | None:
        p = pd.to_numeric(series, errors="coerce").to_numpy(float)
        if not np.isfinite(p[faulted]).any():
            return None
        return rounded(float(np.nansum(p[faulted] * dur_h[faulted])), 4)

    rows: list[tuple[str, Any]] = [("fault duration [h]", rounded(float(dur_h[faulted].sum()), 4))]
    for label, col in (
        ("load demand [MWh]", "load_demand_mw"),
        ("load served [MWh]", "load_served_mw"),
        ("unserved energy [MWh]", "load_unserved_mw"),
        ("demand not computed (power flow failed) [MWh]", "load_not_computed_mw"),
    ):
        if col in steps.columns:
            rows.append((label, energy(num(steps, col))))
    for tier in _tiers(steps):
        e = [energy(num(steps, f"tier{tier}_{kind}_mw")) for kind in ("demand", "served", "shed")]
        rows.append((f"tier {tier} demand / served / shed [MWh]", " / ".join(map(fmt, e))))
    avail = num(steps, "wind_avail_mw").fillna(0) + num(steps, "pv_avail_mw").fillna(0)
    used = num(steps, "wind_used_mw").fillna(0) + num(steps, "pv_used_mw").fillna(0)
    if any(c in steps.columns for c in ("wind_avail_mw", "pv_avail_mw")):
        e_avail, e_used = energy(avail), energy(used)
        share = f" ({100 * e_used / e_avail:.1f} %)" if e_avail and e_used is not None else ""
        rows.append(("renewable (wind + PV) available [MWh]", e_avail))
        rows.append(("renewable (wind + PV) used [MWh]", f"{fmt(e_used)}{share}"))
        rows.append(("renewable curtailed [MWh]", energy(avail - used)))
    units = run.unit_p
    ess_cols = [c for c in units.columns if is_storage(c)] if units is not None else []
    if ess_cols:
        p = units[ess_cols].apply(pd.to_numeric, errors="coerce").reindex(steps.index)
        delivered = {c: energy(-p[c].clip(upper=0)) for c in ess_cols}  # charging > 0
        charged = {c: energy(p[c].clip(lower=0)) for c in ess_cols}
        total = energy(-p.clip(upper=0).sum(axis=1, min_count=1))
        rows.append(("storage energy delivered, all [MWh]", total))
        for c in ess_cols:
            rows.append(
                (
                    f"storage delivered / charged, {c} [MWh]",
                    f"{fmt(delivered[c])} / {fmt(charged[c])}",
                )
            )
    return html_table(["over the fault periods", "value"], rows)


def _tiers(steps: pd.DataFrame) -> list[str]:
    """Priority tiers with columns ``tier{t}_demand_mw`` in steps.csv."""
    cols = [c for c in steps.columns if c.startswith("tier") and c.endswith("_demand_mw")]
    return sorted(c.removeprefix("tier").removesuffix("_demand_mw") for c in cols)


def _restoration_events(
    run: RunData,
    steps: pd.DataFrame,
    faulted: np.ndarray,
    n_buses: pd.Series,
    actions: dict[float, str],
    plans: pd.DataFrame | None,
) -> str:
    islands, collapsed = label_column(steps, "islands"), label_column(steps, "islands_collapsed")
    faults = label_column(steps, "active_faults")
    unserved = num(steps, "load_unserved_mw")
    times = steps.index.to_numpy(float)
    keep = faulted.copy()
    after = 0
    for i in range(len(times)):  # the steps right after a fault, while still eventful
        if faulted[i]:
            after = 0
            continue
        if i and (faulted[i - 1] or 0 < after < AFTER_FAULT_STEPS):
            eventful = (
                after == 0
                or islands.iloc[i] != ""
                or collapsed.iloc[i] != ""
                or float(times[i]) in actions
                or (unserved.iloc[i] or 0) > 1e-6
            )
            if not eventful:
                after = AFTER_FAULT_STEPS
                continue
            keep[i] = True
            after += 1
    plan_status = plan_statuses(plans) if plans is not None else None
    rows = []
    for i in np.flatnonzero(keep)[:MAX_TABLE_ROWS]:
        t = float(times[i])
        buses = n_buses.iloc[i]
        row: list[Any] = [
            round(t / 3600.0, 4),
            timestamp(run, t),
            faults.iloc[i].replace(";", ", ") or ("(cleared)"),
            actions.get(t, ""),
            f"{int(buses)} / {len(IEEE_BUSES)}" if math.isfinite(buses) else None,
            islands.iloc[i].replace(";", ", "),
            collapsed.iloc[i].replace(";", ", "),
            rounded(max(float(unserved.iloc[i]), 0.0), 4) if pd.notna(unserved.iloc[i]) else None,
        ]
        if plan_status is not None:
            row.append(plan_status.get(t, ""))
            row.append(rounded(num(plans, "wall_time_s").get(t, math.nan), 2))
        rows.append(row)
    header = [
        "time [h]",
        "timestamp",
        "faults in force",
        "switch actions",
        "energised buses",
        "islands",
        "collapsed islands",
        "unserved [MW]",
    ]
    if plan_status is not None:
        header += ["restoration plan", "plan wall time [s]"]
    return html_table(header, rows)
