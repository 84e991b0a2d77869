"""Report sections of the optimising controllers: P2P trades, ADMM convergence, costs per
agent and the optimiser against the AC power flow."""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mgcosim.sim.report_base import (
    ADMM_TOL_MW,
    MAX_TABLE_ROWS,
    RESIDUAL_FLOOR_MW,
    RunData,
    esc,
    has,
    html_figure,
    html_section,
    html_table,
    missing,
    new_figure,
    not_optimal,
    num,
    optimiser_plans,
    plan_statuses,
    restoration_plans,
    rounded,
    step_series,
    time_axis,
    timestamp,
    x_of,
    x_per_s,
    xs,
)


def section_p2p(run: RunData) -> str | None:
    """Planned first-period P2P trade of each microgrid pair over time."""
    df = run.p2p
    if missing(df):
        return None
    step_s = run.controller_step_s
    fig = new_figure(10, 3.6)
    ax = fig.add_subplot()
    for col in df.columns:
        ax.step(*step_series(run, df[col], step_s), where="post", label=col, linewidth=1.6)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("planned trade [MW]")
    ax.set_title("> 0: the first microgrid buys from the second", fontsize=10)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    time_axis(ax, run)
    step_h = step_s / 3600.0
    rows = []
    for col in df.columns:
        p = num(df, col)
        buyer, _, seller = col.partition("->")
        rows.append(
            (
                col,
                rounded(float(p.clip(lower=0).sum()) * step_h, 4),
                rounded(float(-p.clip(upper=0).sum()) * step_h, 4),
                rounded(float(p.abs().max()), 4),
            )
        )
    header = ["pair A->B", "A buys from B [MWh]", "B buys from A [MWh]", "largest |trade| [MW]"]
    caption = (
        "&gt; 0: the first microgrid buys from the second (MG1-&gt;MG2 &gt; 0: MG1 buys "
        "from MG2). Trade planned for the first period of each plan, held until the next "
        "controller "
        f"step ({step_s / 60:g} min). Energies assume each planned trade holds for one "
        "controller step."
    )
    body = html_figure(fig, "planned P2P trades", caption) + html_table(header, rows)
    return html_section("p2p", "P2P trades", body)


def _status_notes(run: RunData, plans: pd.DataFrame) -> str:
    bad = not_optimal(plans)
    if bad.empty:
        return f"<p>All {len(plans)} horizons solved optimally.</p>"
    n_fallback = int(bad.str.startswith("fallback").sum())
    n_not_conv = int(bad.str.startswith("admm_not_converged").sum())
    parts = []
    if n_fallback:
        parts.append(f"{n_fallback} fell back to the rule-based controller")
    if n_not_conv:
        parts.append(f"{n_not_conv} with ADMM not converged (centralised plan applied)")
    other = len(bad) - n_fallback - n_not_conv
    if other:
        parts.append(f"{other} with another status")
    rows = [(t / 3600.0, timestamp(run, t), s) for t, s in bad.iloc[:MAX_TABLE_ROWS].items()]
    return (
        f'<p class="flag">&#9888; {len(bad)} of {len(plans)} horizons not optimal: '
        f"{esc('; '.join(parts))}.</p>" + html_table(["plan time [h]", "timestamp", "status"], rows)
    )


def section_admm(run: RunData) -> str | None:
    """Residuals per ADMM iteration, and per horizon: iterations, gap, solve times, status.

    For a centralised run (no ADMM history) the same section lists the plans' statuses
    and solve times under the title "Optimiser plans".
    """
    plans, hist = optimiser_plans(run), run.admm_history
    has_hist = (
        hist is not None
        and not hist.empty
        and "outer" in hist.columns
        and any(has(hist, c) for c in ("r_outer_mw", "r_inner_mw"))
    )
    has_plans = plans is not None and not plans.empty
    if not has_hist and not has_plans:
        return None
    is_admm = has_hist or run.controller == "admm" or (has_plans and has(plans, "outer_iterations"))
    body = _status_notes(run, plans) if has_plans else ""
    restoration = restoration_plans(run)
    if restoration is not None:
        body += (
            f'<p class="note">{len(restoration)} restoration-mode plan(s) (fault steps) are '
            'not counted here; see <a href="#restoration">Restoration timeline</a>.</p>'
        )
    if has_plans and is_admm:
        body += _admm_sentence(plans)
    if has_hist:
        body += html_figure(
            _residual_figure(hist, plans if has_plans else None),
            "ADMM primal residuals per iteration",
            "Largest primal residual after each outer iteration, one grey line per horizon; "
            "coloured lines: the horizons named in the legend. Outer: DSO vs microgrid "
            "exchange at the PCCs; inner: mismatch of the P2P trade pairs (after the inner "
            f"loop of that outer iteration). Dashed: the {ADMM_TOL_MW:g} MW threshold; "
            f"values below {RESIDUAL_FLOOR_MW:g} MW are drawn at it.",
        )
    if has_plans:
        fig = _horizon_figure(run, plans)
        if fig is not None:
            body += html_figure(
                fig,
                "per-horizon iterations, gap and solve times",
                "Per controller step (plan time). Red bands: horizons not solved optimally. "
                "Gap: ADMM objective vs the centralised optimum of the same horizon.",
            )
        body += _horizon_table(run, plans)
    title = "ADMM convergence" if is_admm else "Optimiser plans"
    return html_section("admm", title, body)


def _admm_sentence(plans: pd.DataFrame) -> str:
    parts = []
    conv = plans["converged"].astype(str).str.lower() if "converged" in plans.columns else None
    if conv is not None:
        n_conv = int((conv == "true").sum())
        parts.append(f"ADMM converged in {n_conv} of {len(plans)} horizons")
    outer = num(plans, "outer_iterations")
    if outer.notna().any():
        inner = num(plans, "inner_iterations")
        parts.append(
            f"outer iterations median {outer.median():g} (max {outer.max():g}), "
            f"inner iterations median {inner.median():g} (max {inner.max():g})"
        )
    gap = num(plans, "gap_pct")
    if gap.notna().any():
        parts.append(
            f"gap to the centralised optimum median {gap.median():.3g} % (max {gap.max():.3g} %)"
        )
    t_admm, t_central = num(plans, "admm_time_s"), num(plans, "central_time_s")
    if t_admm.notna().any():
        text = f"ADMM solve time median {t_admm.median():.2f} s"
        if t_central.notna().any():
            text += f" vs centralised {t_central.median():.2f} s"
        parts.append(text)
    return f"<p>{esc('; '.join(parts))}.</p>" if parts else ""


def _highlights(hist: pd.DataFrame, plans: pd.DataFrame | None) -> dict[float, str]:
    """A few horizons to draw in colour: first, slowest, fastest and any not optimal."""
    n_iter = hist.groupby(level=0).size()
    out: dict[float, str] = {}
    if plans is not None:
        for t, status in not_optimal(plans).items():
            if t in n_iter.index and len(out) < 3:
                out[t] = status.split(":")[0]
    first = n_iter.index[0]
    out.setdefault(first, "first (cold start)")
    out.setdefault(n_iter.idxmax(), "most iterations")
    if len(n_iter) > 2:
        out.setdefault(n_iter.idxmin(), "fewest iterations")
    return {t: f"{t / 3600:g} h: {why}, {n_iter[t]} outer" for t, why in out.items()}


def _residual_figure(hist: pd.DataFrame, plans: pd.DataFrame | None) -> Figure:
    fig = new_figure(10, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    highlight = _highlights(hist, plans)
    colours = matplotlib.colormaps["tab10"].colors
    panels = [
        ("r_outer_mw", "outer residual (PCC exchange)"),
        ("r_inner_mw", "inner residual (P2P trades)"),
    ]
    for ax, (col, title) in zip(axes, panels, strict=True):
        for t, group in hist.groupby(level=0):
            k = num(group, "outer").to_numpy()
            r = num(group, col).clip(lower=RESIDUAL_FLOOR_MW).to_numpy()
            if t not in highlight:
                ax.plot(k, r, color="grey", alpha=0.35, linewidth=0.8)
        for i, (t, label) in enumerate(highlight.items()):
            group = hist.loc[[t]]
            k = num(group, "outer").to_numpy()
            r = num(group, col).clip(lower=RESIDUAL_FLOOR_MW).to_numpy()
            colour = "#d62728" if "not" in label or "fallback" in label else colours[i % 10]
            ax.plot(k, r, color=colour, linewidth=1.8, label=label)
        ax.axhline(ADMM_TOL_MW, color="black", linestyle="--", linewidth=1.0)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("outer iteration")
        ax.grid(alpha=0.3, which="major")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("largest primal residual [MW]")
    handles, labels = axes[0].get_legend_handles_labels()
    handles += [
        Line2D([], [], color="grey", alpha=0.5, label="other horizons"),
        Line2D([], [], color="black", linestyle="--", label=f"threshold {ADMM_TOL_MW:g} MW"),
    ]
    axes[1].legend(handles=handles, loc="upper right", fontsize="small")
    return fig


def _horizon_figure(run: RunData, plans: pd.DataFrame) -> Figure | None:
    panels = [
        (
            [("outer_iterations", "outer"), ("inner_iterations", "inner (total)")],
            "iterations",
        ),
        ([("gap_pct", "ADMM vs centralised")], "gap [%]"),
        (
            [
                ("admm_time_s", "ADMM solve"),
                ("central_time_s", "centralised solve"),
                ("wall_time_s", "controller step (wall)"),
            ],
            "time [s]",
        ),
    ]
    panels = [(cols, label) for cols, label in panels if any(has(plans, c) for c, _ in cols)]
    if not panels:
        return None
    fig = new_figure(10, 1.0 + 1.9 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    x = xs(run, plans)
    step_x = run.controller_step_s * x_per_s(run)
    bad = x_of(run, not_optimal(plans).index.to_numpy(float))
    for ax, (cols, label) in zip(axes, panels, strict=True):
        for col, name in cols:
            if has(plans, col):
                ax.plot(x, num(plans, col), marker="o", markersize=4, label=name)
        for t in bad:
            ax.axvspan(t, t + step_x, color="#d62728", alpha=0.15, linewidth=0)
        if label.startswith("gap"):
            ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
    last_bad = bool(np.isclose(bad, x.max()).any())
    right = x.max() + (step_x if last_bad else 0.3 * step_x)  # show a last red band
    axes[0].set_xlim(x.min() - 0.3 * step_x, right)
    time_axis(axes[-1], run)
    return fig


def _horizon_table(run: RunData, plans: pd.DataFrame) -> str:
    cols = [
        ("outer_iterations", "outer it.", 0),
        ("inner_iterations", "inner it.", 0),
        ("gap_pct", "gap [%]", 4),
        ("admm_time_s", "ADMM [s]", 2),
        ("central_time_s", "centralised [s]", 2),
        ("wall_time_s", "wall [s]", 2),
        ("objective_cny", "objective [CNY]", 1),
        ("central_objective_cny", "centralised optimum [CNY]", 1),
    ]
    cols = [c for c in cols if has(plans, c[0])]
    status = plan_statuses(plans)
    opened = plans["open_branches"] if "open_branches" in plans.columns else None
    rows = []
    for i, t in enumerate(plans.index[:MAX_TABLE_ROWS]):
        row: list[Any] = [t / 3600.0, status.iloc[i]]
        for col, _, digits in cols:
            value = num(plans, col).iloc[i]
            row.append(
                int(value) if digits == 0 and math.isfinite(value) else rounded(value, digits)
            )
        if opened is not None:
            row.append(str(opened.iloc[i]).replace(";", ", ") if pd.notna(opened.iloc[i]) else "")
        rows.append(row)
    header = ["plan time [h]", "status"] + [c[1] for c in cols]
    if opened is not None:
        header.append("open branches")
    return (
        f"<details><summary>Per-horizon figures ({len(plans)} horizons)</summary>"
        f"{html_table(header, rows)}</details>"
    )


def section_agent_costs(run: RunData) -> str | None:
    """Each agent's planned cost over the horizon of every plan."""
    plans = optimiser_plans(run)
    if missing(plans):
        return None
    cols = [
        c for c in plans.columns if c.startswith("cost_") and c.endswith("_cny") and has(plans, c)
    ]
    if not cols:
        return None
    agents = [c.removeprefix("cost_").removesuffix("_cny") for c in cols]
    costs = pd.DataFrame({a: num(plans, c) for a, c in zip(agents, cols, strict=True)})
    total = costs.sum(axis=1, min_count=1)
    fig = new_figure(10, 3.8)
    ax = fig.add_subplot()
    x = xs(run, plans)
    for agent in agents:
        ax.plot(x, costs[agent], marker="o", markersize=4, label=agent)
    ax.plot(x, total, color="black", marker="s", markersize=4, label="sum of agents")
    if has(plans, "central_objective_cny"):
        ax.plot(
            x,
            num(plans, "central_objective_cny"),
            color="black",
            linestyle=":",
            label="centralised optimum",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("planned cost over the horizon [CNY]")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.grid(alpha=0.3)
    time_axis(ax, run)
    rows = [
        (a, rounded(costs[a].mean(), 1), rounded(costs[a].min(), 1), rounded(costs[a].max(), 1))
        for a in agents
    ]
    rows.append(
        (
            "sum of agents",
            rounded(total.mean(), 1),
            rounded(total.min(), 1),
            rounded(total.max(), 1),
        )
    )
    note = (
        "<p>Each agent's cost as planned over the whole horizon of each controller step "
        "(negative: net income). Horizons overlap, so these are not additive over the day; "
        "the realised day costs are in the summary. P2P payments and wheeling fees are "
        "transfers between the agents (one microgrid's payment is another's income, the "
        "wheeling fees the microgrids pay are the DSO's income): they shift cost between "
        "agents but cancel in the sum, which is the system objective.</p>"
    )
    not_conv = not_optimal(plans).str.startswith("admm_not_converged")
    if not_conv.any():
        note += (
            f'<p class="note">{int(not_conv.sum())} horizon(s) with ADMM not converged: their '
            "costs are those of ADMM's last iterate, not of the centralised plan applied.</p>"
        )
    body = (
        html_figure(fig, "planned cost per agent")
        + note
        + html_table(["agent", "mean [CNY]", "min [CNY]", "max [CNY]"], rows)
    )
    return html_section("agent-costs", "Costs per agent", body)
