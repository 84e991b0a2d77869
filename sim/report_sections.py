"""Report sections of every run: header, bus voltages, storage, exchanges, losses, switch
states and power-flow convergence."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mgcosim.sim.report_base import (
    MAX_TABLE_ROWS,
    V_MAX_PU,
    V_MIN_PU,
    RunData,
    branch_key,
    energy_mwh,
    esc,
    html_figure,
    html_section,
    html_table,
    missing,
    new_figure,
    number,
    step_series,
    time_axis,
    time_edges,
    timestamp,
    xs,
)
from mgcosim.sim.run_state import STATUS_COMPLETED, STATUS_FAILED_FLOWS, STOPPED, manifest_state


def section_header(run: RunData) -> str:
    """Title block: scenario, seed, controller, status (flagged unless completed)."""
    m = run.manifest or {}
    name = m.get("scenario_name") or run.run_dir.name
    step, duration, wall = run.step_s, number(m, "duration_s"), number(m, "wall_time_s")
    rows = [
        ("Scenario", name),
        ("Scenario file", m.get("scenario_path")),
        ("Start", m.get("start")),
        ("Physical step", f"{step:g} s" if step else None),
        ("Duration", f"{duration / 3600:g} h" if duration is not None else None),
        ("Seed", m.get("seed")),
        ("Controller", m.get("controller")),
        ("Status", _status_text(run)),
        ("Wall time", f"{wall:.1f} s" if wall is not None else None),
        ("Run directory", str(run.run_dir)),
    ]
    versions = m.get("versions") or {}
    if versions:
        rows.append(("Versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    table = html_table(None, [r for r in rows if r[1] is not None])
    return (
        f"<header>\n<h1>Run report: {esc(name)}</h1>\n{_status_flag(run)}"
        f"{table}\n{_file_notes(run)}</header>"
    )


def _status_text(run: RunData) -> str:
    """Status and steps done; a run marked running whose process is gone (on this host) is
    "stopped without finishing" (:func:`sim.run_state.manifest_state`)."""
    if run.manifest is None:
        return "unknown (manifest.json missing)"
    m = run.manifest
    status = str(m.get("status", "unknown"))
    done, total = run.steps_done, run.steps_total
    of = f"{done if done is not None else '?'} of {total if total is not None else '?'} steps"
    if status == STATUS_COMPLETED:
        return f"completed ({of})"
    if status == STATUS_FAILED_FLOWS:
        return f"completed ({of}), {m.get('n_not_converged', '?')} power flows not converged"
    if status != "running":
        return f"{status} after {of}"
    beat = f"last heartbeat {m.get('heartbeat')} UTC"
    if manifest_state(m).state == STOPPED:
        return f"{STOPPED} after {of} (process {m.get('pid')} on {m.get('host')} is gone, {beat})"
    if "pid" not in m:
        return f"running (or stopped without notice) after {of}"
    return f"running (process {m.get('pid')} on {m.get('host')}) after {of}, {beat}"


def _status_flag(run: RunData) -> str:
    status = (run.manifest or {}).get("status")
    if status == STATUS_COMPLETED:
        return ""
    if status == STATUS_FAILED_FLOWS:
        lost = (run.summary or {}).get("energy_not_computed_mwh")
        energy = f": {lost:.4f} MWh of demand not computed" if isinstance(lost, float) else ""
        return (
            f'<p class="flag">&#9888; Run finished with failed power flows'
            f"{esc(energy)} ({esc(_status_text(run))}).</p>\n"
        )
    return f'<p class="flag">&#9888; Run not completed: {esc(_status_text(run))}.</p>\n'


def _file_notes(run: RunData) -> str:
    notes = []
    if run.missing:
        notes.append("Files absent: " + ", ".join(run.missing) + ".")
    notes.extend(f"Unreadable: {p}" for p in run.problems)
    return "".join(f'<p class="note">{esc(n)}</p>\n' for n in notes)


def section_voltages(run: RunData) -> str | None:
    """Heat map of IEEE bus voltages over time."""
    df = run.bus_vm
    if missing(df):
        return None
    bus_cols = sorted((c for c in df.columns if c.isdigit()), key=int)
    if not bus_cols:
        return None
    vm = df[bus_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float).T
    body = html_figure(
        _voltage_figure(run, df, bus_cols, vm),
        "bus voltage heat map",
        f"IEEE buses 1–33 over time. Limits {V_MIN_PU} / {V_MAX_PU} pu: bus-steps outside "
        "them are marked &times;; grey cells have no power-flow result.",
    )
    body += _voltage_notes(df, bus_cols, vm)
    return html_section("voltages", "Bus voltages", body)


def _voltage_figure(run: RunData, df: pd.DataFrame, bus_cols: list[str], vm: np.ndarray) -> Figure:
    fig = new_figure(10, 5.5)
    ax = fig.add_subplot()
    x_edges = time_edges(run, df)
    y_edges = np.arange(len(bus_cols) + 1) + 0.5
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="lightgrey")
    finite = vm[np.isfinite(vm)]
    # symmetric around 1.0 and wide enough to show both limits on the colour bar
    half = min(max(0.11, float(np.max(np.abs(finite - 1.0)))), 0.3) if finite.size else 0.11
    mesh = ax.pcolormesh(
        x_edges,
        y_edges,
        np.ma.masked_invalid(vm),
        cmap=cmap,
        norm=Normalize(1.0 - half, 1.0 + half),
        shading="flat",
    )
    cbar = fig.colorbar(mesh, ax=ax, extend="both")
    cbar.set_label("voltage magnitude [pu]")
    for lim in (V_MIN_PU, V_MAX_PU):
        if 1.0 - half <= lim <= 1.0 + half:
            cbar.ax.axhline(lim, color="black", linestyle="--")
    bad_bus, bad_t = np.nonzero((vm < V_MIN_PU) | (vm > V_MAX_PU))
    centres = (x_edges[:-1] + x_edges[1:]) / 2
    ax.scatter(centres[bad_t], bad_bus + 1, marker="x", color="black", s=12)
    ax.set_yticks(np.arange(1, len(bus_cols) + 1), bus_cols, fontsize=7)
    ax.invert_yaxis()
    ax.set_ylabel("IEEE bus")
    time_axis(ax, run)
    handles = [
        Line2D(
            [],
            [],
            marker="x",
            color="black",
            linestyle="",
            label=f"outside {V_MIN_PU}–{V_MAX_PU} pu",
        ),
        Patch(color="lightgrey", label="no result (not converged)"),
    ]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)
    return fig


def _voltage_notes(df: pd.DataFrame, bus_cols: list[str], vm: np.ndarray) -> str:
    n_bad = int(np.sum((vm < V_MIN_PU) | (vm > V_MAX_PU)))
    text = f"{n_bad} bus-steps outside {V_MIN_PU}–{V_MAX_PU} pu."
    mg_cols = [c for c in df.columns if c not in bus_cols]
    if mg_cols:
        mg = df[mg_cols].apply(pd.to_numeric, errors="coerce")
        parts = [f"{esc(c)} {mg[c].min():.4f}–{mg[c].max():.4f} pu" for c in mg_cols]
        text += " Microgrid buses (min–max): " + ", ".join(parts) + "."
    return f"<p>{text}</p>"


def section_soc(run: RunData) -> str | None:
    """State-of-charge trajectories, one line per storage."""
    df = run.soc
    if missing(df):
        return None
    fig = new_figure(10, 3.5)
    ax = fig.add_subplot()
    for col in df.columns:
        ax.plot(xs(run, df), pd.to_numeric(df[col], errors="coerce"), marker=".", label=col)
    ax.set_ylabel("state of charge [MWh]")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    time_axis(ax, run)
    body = html_figure(fig, "storage state of charge", "State of charge at the start of each step.")
    return html_section("soc", "Storage state of charge", body)


def section_exchange(run: RunData) -> str | None:
    """Import (> 0) / export (< 0) of each microgrid through its PCC."""
    df = run.exchange
    if missing(df):
        return None
    fig = new_figure(10, 1.2 + 1.8 * len(df.columns))
    axes = fig.subplots(len(df.columns), 1, sharex=True, squeeze=False)[:, 0]
    for ax, col in zip(axes, df.columns, strict=True):
        x, y = step_series(run, df[col])
        ax.step(x, y, where="post", label=col)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(f"{col} [MW]")
        ax.grid(alpha=0.3)
    axes[0].set_title("exchange through the PCC (> 0: import / buys, < 0: export)", fontsize=10)
    time_axis(axes[-1], run)
    rows = []
    for col in df.columns:
        p = pd.to_numeric(df[col], errors="coerce")
        imported, exported = energy_mwh(run, p.clip(lower=0)), energy_mwh(run, -p.clip(upper=0))
        rows.append((col, round(imported, 3), round(exported, 3)))
    body = html_figure(fig, "microgrid exchanges") + html_table(
        ["microgrid", "imported [MWh]", "exported [MWh]"], rows
    )
    return html_section("exchange", "Microgrid exchanges", body)


def section_losses(run: RunData) -> str | None:
    """Network losses and substation import over time."""
    df = run.steps
    cols = [c for c in ("p_substation_mw", "p_loss_mw") if df is not None and c in df.columns]
    if missing(df) or not cols:
        return None
    labels = {"p_substation_mw": "substation import [MW]", "p_loss_mw": "losses [MW]"}
    fig = new_figure(10, 1.2 + 2.0 * len(cols))
    axes = fig.subplots(len(cols), 1, sharex=True, squeeze=False)[:, 0]
    for ax, col in zip(axes, cols, strict=True):
        ax.step(*step_series(run, df[col]), where="post")
        ax.set_ylabel(labels[col])
        ax.grid(alpha=0.3)
    time_axis(axes[-1], run)
    rows = [(labels[c].replace("[MW]", "[MWh]"), round(energy_mwh(run, df[c]), 3)) for c in cols]
    body = html_figure(fig, "losses and substation import") + html_table(["energy", "value"], rows)
    return html_section("losses", "Losses and substation import", body)


def section_switches(run: RunData) -> str | None:
    """Switch changes (figure and event list), or the fixed topology in one sentence."""
    df = run.switch_closed
    if missing(df):
        return None
    states = df.apply(pd.to_numeric, errors="coerce")
    changed = [c for c in states.columns if states[c].dropna().nunique() > 1]
    if not changed:
        open_ = sorted(
            (c for c in states.columns if (states[c].dropna() == 0).any()), key=branch_key
        )
        which = ", ".join(open_) if open_ else "none"
        body = (
            f"<p>The topology stayed fixed during the run; open (tie) branches: {esc(which)}; "
            "all other branches closed.</p>"
        )
        return html_section("switches", "Switch states", body)
    changed.sort(key=branch_key)
    events = _switch_events(run, states, changed)
    body = html_figure(_switch_figure(run, states, changed), "switch states")
    body += f"<p>{len(events)} switching actions on branches {esc(', '.join(changed))}.</p>"
    body += html_table(["time [h]", "timestamp", "branch", "action"], events[:MAX_TABLE_ROWS])
    return html_section("switches", "Switch states", body)


def _switch_events(run: RunData, states: pd.DataFrame, cols: list[str]) -> list[tuple]:
    events = []
    for col in cols:
        s = states[col].dropna()
        for t, delta in s.diff().items():
            if pd.notna(delta) and delta != 0:
                events.append(
                    (t / 3600.0, timestamp(run, t), col, "closed" if s[t] == 1 else "opened")
                )
    return sorted(events, key=lambda e: (e[0], branch_key(e[2])))


def _switch_figure(run: RunData, states: pd.DataFrame, cols: list[str]) -> Figure:
    fig = new_figure(10, 1.2 + 0.3 * len(cols))
    ax = fig.add_subplot()
    x_edges = time_edges(run, states)
    cmap = ListedColormap(["#d62728", "#2ca02c"]).with_extremes(bad="lightgrey")
    vals = np.ma.masked_invalid(states[cols].to_numpy(float).T)
    ax.pcolormesh(x_edges, np.arange(len(cols) + 1) + 0.5, vals, cmap=cmap, vmin=0, vmax=1)
    ax.set_yticks(np.arange(1, len(cols) + 1), cols)
    ax.invert_yaxis()
    ax.set_ylabel("branch")
    time_axis(ax, run)
    handles = [Patch(color="#2ca02c", label="closed"), Patch(color="#d62728", label="open")]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)
    return fig


def section_convergence(run: RunData) -> str | None:
    """Steps whose power flow did not converge, or one sentence if all did."""
    df = run.steps
    if df is None or "converged" not in df.columns:
        return None
    ok = pd.to_numeric(df["converged"], errors="coerce") == 1
    bad = df.index[~ok.to_numpy()]
    if len(bad) == 0:
        body = f"<p>All {len(df)} power flows converged.</p>"
        return html_section("convergence", "Power-flow convergence", body)
    step = run.step_s
    rows = [
        (int(round(t / step)) if step else "–", t, t / 3600.0, timestamp(run, t))
        for t in bad[:MAX_TABLE_ROWS]
    ]
    more = len(bad) - len(rows)
    lost = (run.summary or {}).get("energy_not_computed_mwh")
    lost_text = (
        f"; their demand, {lost:.4f} MWh, is counted as not computed"
        if isinstance(lost, float)
        else ""
    )
    body = (
        f'<p class="flag">{len(bad)} of {len(df)} steps without a converged power flow '
        f"(their network values and load service are empty{lost_text}):</p>"
        + html_table(["step", "time_s", "time [h]", "timestamp"], rows)
        + (f"<p>… and {more} more.</p>" if more > 0 else "")
    )
    return html_section("convergence", "Power-flow convergence", body)
