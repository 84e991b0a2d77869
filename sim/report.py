"""Self-contained HTML report of one run directory.

``write_report(run_dir)`` reads the files a run leaves behind (``manifest.json``,
``summary.json`` and the per-step CSV time series) and writes one HTML page with
the figures embedded as base64 PNG (matplotlib Agg, no pyplot state, no external
CSS/JS). Missing or unreadable files are tolerated, so an interrupted run still
renders.

A run with an optimising controller ("admm", "centralised") also leaves
``plans.csv``, ``admm_history.csv``, ``p2p_trades.csv``, ``soc_plan.csv`` and
``validation.csv``; their sections (P2P trades, ADMM convergence, costs per agent,
optimiser vs AC power flow) appear only when those files exist, so a rule-based run
renders as before. ``write_report(run_dir, compare=other_dir)`` adds a section that
sets the daily cost terms of both runs side by side.

Extending: a section is a function ``(run: RunData) -> str | None`` returning an
HTML fragment, or ``None`` when the run has no data for it. Append it to
``SECTIONS`` (or pass your own list to ``render_report``).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from mgcosim.sim.run_state import STATUS_COMPLETED, STATUS_FAILED_FLOWS, STOPPED, manifest_state
from mgcosim.sim.schema import BY_KEY, csv_files, json_files

V_MIN_PU = 0.9
V_MAX_PU = 1.1
MAX_TABLE_ROWS = 200
ADMM_TOL_MW = 1e-3  # primal (and dual) residual threshold of the ADMM
PLAN_PERIOD_S = 3600  # length of a plan's first period (soc_plan.csv is its end)
RESIDUAL_FLOOR_MW = 1e-7  # residuals below this are drawn at it (log scale)

# the files the report reads (their names: sim.schema); the optional ones are written only
# by the optimising controllers, so their absence is not reported as missing
CSV_FILES: dict[str, str] = {
    key: BY_KEY[key].file
    for key in (
        "steps",
        "bus_vm",
        "branch_loading",
        "branch_p_from",
        "switch_closed",
        "unit_p",
        "soc",
        "exchange",
    )
}
OPTIONAL_CSV_FILES: dict[str, str] = csv_files(optional=True)
JSON_FILES: dict[str, str] = json_files()


# --------------------------------------------------------------------------- data


@dataclass
class RunData:
    """Whatever files a run directory holds; a missing or unreadable file is ``None``.

    CSV frames are indexed by ``time_s`` (seconds since the scenario start) and keep
    their column names as strings ("1".."33", "MG1", ...).
    """

    run_dir: Path
    manifest: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    steps: pd.DataFrame | None = None
    bus_vm: pd.DataFrame | None = None
    branch_loading: pd.DataFrame | None = None
    branch_p_from: pd.DataFrame | None = None
    switch_closed: pd.DataFrame | None = None
    unit_p: pd.DataFrame | None = None
    soc: pd.DataFrame | None = None
    exchange: pd.DataFrame | None = None
    plans: pd.DataFrame | None = None
    admm_history: pd.DataFrame | None = None
    p2p: pd.DataFrame | None = None
    soc_plan: pd.DataFrame | None = None
    validation: pd.DataFrame | None = None
    compare: RunData | None = None  # a second run to compare with (write_report(compare=))
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: Path) -> RunData:
        """Load every known file of ``run_dir`` that exists."""
        run = cls(run_dir=Path(run_dir))
        for attr, name in JSON_FILES.items():
            setattr(run, attr, run._read(name, _read_json))
        for attr, name in CSV_FILES.items():
            setattr(run, attr, run._read(name, _read_csv))
        for attr, name in OPTIONAL_CSV_FILES.items():
            setattr(run, attr, run._read(name, _read_csv, optional=True))
        return run

    def _read(self, name: str, reader: Callable[[Path], Any], optional: bool = False) -> Any:
        path = self.run_dir / name
        if not path.is_file():
            if not optional:
                self.missing.append(name)
            return None
        try:
            return reader(path)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            self.problems.append(f"{name}: {exc}")
            return None

    @property
    def start(self) -> pd.Timestamp | None:
        """Scenario start from the manifest, if parseable."""
        try:
            return pd.Timestamp((self.manifest or {})["start"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def step_s(self) -> float | None:
        """Physical step in seconds (manifest, else inferred from steps.csv)."""
        step = (self.manifest or {}).get("physical_step_s")
        if isinstance(step, int | float) and step > 0:
            return float(step)
        for df in (self.steps, self.bus_vm):
            if df is not None and len(df) > 1:
                return float(np.median(np.diff(df.index.to_numpy(float))))
        return None

    @property
    def controller_step_s(self) -> float:
        """Controller step in seconds (manifest, else inferred from plans.csv, else 1 h)."""
        step = (self.manifest or {}).get("controller_step_s")
        if isinstance(step, int | float) and step > 0:
            return float(step)
        if self.plans is not None and len(self.plans) > 1:
            return float(np.median(np.diff(self.plans.index.to_numpy(float))))
        return float(PLAN_PERIOD_S)

    @property
    def controller(self) -> str:
        """Controller name from the manifest (else the run directory's name)."""
        return str((self.manifest or {}).get("controller") or self.run_dir.name)

    @property
    def steps_total(self) -> int | None:
        """Number of steps the scenario asked for."""
        duration = (self.manifest or {}).get("duration_s")
        step = self.step_s
        if not isinstance(duration, int | float) or not step:
            return None
        return int(math.ceil(duration / step))

    @property
    def steps_done(self) -> int | None:
        """Number of steps completed (manifest, else rows in steps.csv)."""
        done = (self.manifest or {}).get("steps_done")
        if isinstance(done, int):
            return done
        return None if self.steps is None else len(self.steps)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise ValueError("empty file") from exc
    if "time_s" not in df.columns:
        raise ValueError("no time_s column")
    df = df.set_index("time_s").drop(columns="time", errors="ignore")  # clock time: manifest
    df.columns = [str(c) for c in df.columns]
    return df


def hours(df: pd.DataFrame) -> np.ndarray:
    """Time axis of ``df`` in hours since the scenario start."""
    return df.index.to_numpy(float) / 3600.0


# ------------------------------------------------------------------ html helpers


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """Compact text for a scalar (floats to 6 significant digits)."""
    if value is None:
        return "–"
    if isinstance(value, bool | int | str):
        return _esc(value)
    if isinstance(value, float | np.floating):
        return "–" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return _esc(json.dumps(value, default=str))


def _table(header: Sequence[str] | None, rows: Iterable[Sequence[Any]]) -> str:
    """HTML table of formatted scalars; no header row when ``header`` is None."""
    head = ""
    if header is not None:
        head = "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{_esc(sid)}">\n<h2>{_esc(title)}</h2>\n{body}\n</section>'


def _figure(fig: Figure, alt: str, caption: str = "") -> str:
    """Render ``fig`` to an embedded PNG ``<figure>``."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _time_axis(ax: Axes, run: RunData) -> None:
    start = run.start
    suffix = f" (start {start:%Y-%m-%d %H:%M})" if start is not None else ""
    ax.set_xlabel(f"hours since start{suffix}")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 6, 10]))


def _time_edges(run: RunData, df: pd.DataFrame, step_s: float | None = None) -> np.ndarray:
    """Step boundaries in hours: the row times plus the end of the last step.

    ``step_s`` is the row spacing (default: the physical step).
    """
    x = hours(df)
    step_h = (step_s or run.step_s or 3600.0) / 3600.0
    return np.append(x, x[-1] + step_h) if len(x) else x


def _step_series(
    run: RunData, series: pd.Series, step_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """x/y for a step plot in which the last step keeps its full width."""
    y = pd.to_numeric(series, errors="coerce").to_numpy(float)
    return _time_edges(run, series.to_frame(), step_s), np.append(y, y[-1:])


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` as floats (all NaN when absent)."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


def _has(df: pd.DataFrame | None, col: str) -> bool:
    """Whether ``df`` has column ``col`` with at least one number in it."""
    return df is not None and bool(_num(df, col).notna().any())


def _round(value: float, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits) + 0.0  # + 0.0: no "-0"


def _energy_mwh(run: RunData, series: pd.Series) -> float:
    """Energy of a per-step MW series (NaN steps count as zero)."""
    step_h = (run.step_s or 0.0) / 3600.0
    return float(np.nansum(pd.to_numeric(series, errors="coerce").to_numpy(float)) * step_h)


def _branch_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def _timestamp(run: RunData, time_s: float) -> str:
    start = run.start
    if start is None:
        return "–"
    return f"{start + pd.to_timedelta(time_s, unit='s'):%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------- sections


def section_header(run: RunData) -> str:
    """Title block: scenario, seed, controller, status (flagged unless completed)."""
    m = run.manifest or {}
    name = m.get("scenario_name") or run.run_dir.name
    step, duration, wall = run.step_s, _number(m, "duration_s"), _number(m, "wall_time_s")
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
    table = _table(None, [r for r in rows if r[1] is not None])
    return (
        f"<header>\n<h1>Run report: {_esc(name)}</h1>\n{_status_flag(run)}"
        f"{table}\n{_file_notes(run)}</header>"
    )


def _number(mapping: dict[str, Any], key: str) -> float | None:
    value = mapping.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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
            f"{_esc(energy)} ({_esc(_status_text(run))}).</p>\n"
        )
    return f'<p class="flag">&#9888; Run not completed: {_esc(_status_text(run))}.</p>\n'


def _file_notes(run: RunData) -> str:
    notes = []
    if run.missing:
        notes.append("Files absent: " + ", ".join(run.missing) + ".")
    notes.extend(f"Unreadable: {p}" for p in run.problems)
    return "".join(f'<p class="note">{_esc(n)}</p>\n' for n in notes)


def section_summary(run: RunData) -> str | None:
    """All figures of summary.json as a key/value table."""
    if not run.summary:
        return None
    table = _table(["figure", "value"], run.summary.items())
    return _section("summary", "Summary", table)


def section_voltages(run: RunData) -> str | None:
    """Heat map of IEEE bus voltages over time."""
    df = run.bus_vm
    if df is None or df.empty:
        return None
    bus_cols = sorted((c for c in df.columns if c.isdigit()), key=int)
    if not bus_cols:
        return None
    vm = df[bus_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float).T
    body = _figure(
        _voltage_figure(run, df, bus_cols, vm),
        "bus voltage heat map",
        f"IEEE buses 1–33 over time. Limits {V_MIN_PU} / {V_MAX_PU} pu: bus-steps outside "
        "them are marked &times;; grey cells have no power-flow result.",
    )
    body += _voltage_notes(df, bus_cols, vm)
    return _section("voltages", "Bus voltages", body)


def _voltage_figure(run: RunData, df: pd.DataFrame, bus_cols: list[str], vm: np.ndarray) -> Figure:
    fig = _new_figure(10, 5.5)
    ax = fig.add_subplot()
    x_edges = _time_edges(run, df)
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
    _time_axis(ax, run)
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
        parts = [f"{_esc(c)} {mg[c].min():.4f}–{mg[c].max():.4f} pu" for c in mg_cols]
        text += " Microgrid buses (min–max): " + ", ".join(parts) + "."
    return f"<p>{text}</p>"


def section_soc(run: RunData) -> str | None:
    """State-of-charge trajectories, one line per storage."""
    df = run.soc
    if df is None or df.empty or not len(df.columns):
        return None
    fig = _new_figure(10, 3.5)
    ax = fig.add_subplot()
    for col in df.columns:
        ax.plot(hours(df), pd.to_numeric(df[col], errors="coerce"), marker=".", label=col)
    ax.set_ylabel("state of charge [MWh]")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    _time_axis(ax, run)
    body = _figure(fig, "storage state of charge", "State of charge at the start of each step.")
    return _section("soc", "Storage state of charge", body)


def section_exchange(run: RunData) -> str | None:
    """Import (> 0) / export (< 0) of each microgrid through its PCC."""
    df = run.exchange
    if df is None or df.empty or not len(df.columns):
        return None
    fig = _new_figure(10, 1.2 + 1.8 * len(df.columns))
    axes = fig.subplots(len(df.columns), 1, sharex=True, squeeze=False)[:, 0]
    for ax, col in zip(axes, df.columns, strict=True):
        x, y = _step_series(run, df[col])
        ax.step(x, y, where="post", label=col)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(f"{col} [MW]")
        ax.grid(alpha=0.3)
    axes[0].set_title("exchange through the PCC (> 0: import / buys, < 0: export)", fontsize=10)
    _time_axis(axes[-1], run)
    rows = []
    for col in df.columns:
        p = pd.to_numeric(df[col], errors="coerce")
        imported, exported = _energy_mwh(run, p.clip(lower=0)), _energy_mwh(run, -p.clip(upper=0))
        rows.append((col, round(imported, 3), round(exported, 3)))
    body = _figure(fig, "microgrid exchanges") + _table(
        ["microgrid", "imported [MWh]", "exported [MWh]"], rows
    )
    return _section("exchange", "Microgrid exchanges", body)


def section_losses(run: RunData) -> str | None:
    """Network losses and substation import over time."""
    df = run.steps
    cols = [c for c in ("p_substation_mw", "p_loss_mw") if df is not None and c in df.columns]
    if df is None or df.empty or not cols:
        return None
    labels = {"p_substation_mw": "substation import [MW]", "p_loss_mw": "losses [MW]"}
    fig = _new_figure(10, 1.2 + 2.0 * len(cols))
    axes = fig.subplots(len(cols), 1, sharex=True, squeeze=False)[:, 0]
    for ax, col in zip(axes, cols, strict=True):
        ax.step(*_step_series(run, df[col]), where="post")
        ax.set_ylabel(labels[col])
        ax.grid(alpha=0.3)
    _time_axis(axes[-1], run)
    rows = [(labels[c].replace("[MW]", "[MWh]"), round(_energy_mwh(run, df[c]), 3)) for c in cols]
    body = _figure(fig, "losses and substation import") + _table(["energy", "value"], rows)
    return _section("losses", "Losses and substation import", body)


def section_switches(run: RunData) -> str | None:
    """Switch changes (figure and event list), or the fixed topology in one sentence."""
    df = run.switch_closed
    if df is None or df.empty:
        return None
    states = df.apply(pd.to_numeric, errors="coerce")
    changed = [c for c in states.columns if states[c].dropna().nunique() > 1]
    if not changed:
        open_ = sorted(
            (c for c in states.columns if (states[c].dropna() == 0).any()), key=_branch_key
        )
        which = ", ".join(open_) if open_ else "none"
        body = (
            f"<p>The topology stayed fixed during the run; open (tie) branches: {_esc(which)}; "
            "all other branches closed.</p>"
        )
        return _section("switches", "Switch states", body)
    changed.sort(key=_branch_key)
    events = _switch_events(run, states, changed)
    body = _figure(_switch_figure(run, states, changed), "switch states")
    body += f"<p>{len(events)} switching actions on branches {_esc(', '.join(changed))}.</p>"
    body += _table(["time [h]", "timestamp", "branch", "action"], events[:MAX_TABLE_ROWS])
    return _section("switches", "Switch states", body)


def _switch_events(run: RunData, states: pd.DataFrame, cols: list[str]) -> list[tuple]:
    events = []
    for col in cols:
        s = states[col].dropna()
        for t, delta in s.diff().items():
            if pd.notna(delta) and delta != 0:
                events.append(
                    (t / 3600.0, _timestamp(run, t), col, "closed" if s[t] == 1 else "opened")
                )
    return sorted(events, key=lambda e: (e[0], _branch_key(e[2])))


def _switch_figure(run: RunData, states: pd.DataFrame, cols: list[str]) -> Figure:
    fig = _new_figure(10, 1.2 + 0.3 * len(cols))
    ax = fig.add_subplot()
    x_edges = _time_edges(run, states)
    cmap = ListedColormap(["#d62728", "#2ca02c"]).with_extremes(bad="lightgrey")
    vals = np.ma.masked_invalid(states[cols].to_numpy(float).T)
    ax.pcolormesh(x_edges, np.arange(len(cols) + 1) + 0.5, vals, cmap=cmap, vmin=0, vmax=1)
    ax.set_yticks(np.arange(1, len(cols) + 1), cols)
    ax.invert_yaxis()
    ax.set_ylabel("branch")
    _time_axis(ax, run)
    handles = [Patch(color="#2ca02c", label="closed"), Patch(color="#d62728", label="open")]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)
    return fig


# ------------------------------------------------------------------- restoration

TIE_BRANCHES = frozenset(str(b) for b in range(33, 38))  # normally open IEEE tie lines
RESTORATION_MODE = "restoration"
IEEE_BUSES = [str(b) for b in range(1, 34)]
AFTER_FAULT_STEPS = 4  # at most this many steps after a fault are listed (if still eventful)


def _labels(df: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` of ";"-joined names as stripped strings ("" when empty or absent)."""
    if col not in df.columns:
        return pd.Series("", index=df.index, dtype=object)
    return df[col].fillna("").astype(str).str.strip()


def _names(value: str) -> list[str]:
    return [n.strip() for n in str(value).split(";") if n.strip()]


def _restoration_plans(run: RunData) -> pd.DataFrame | None:
    """Rows of plans.csv written in restoration mode (None when there are none)."""
    plans = run.plans
    if plans is None or plans.empty or "mode" not in plans.columns:
        return None
    rest = plans[_labels(plans, "mode") == RESTORATION_MODE]
    return rest if not rest.empty else None


def _optimiser_plans(run: RunData) -> pd.DataFrame | None:
    """Rows of plans.csv of the normal optimiser (restoration-mode rows left out)."""
    plans = run.plans
    if plans is None or plans.empty:
        return None
    if "mode" in plans.columns:
        plans = plans[_labels(plans, "mode") != RESTORATION_MODE]
    return plans if not plans.empty else None


def _durations_h(run: RunData, df: pd.DataFrame) -> np.ndarray:
    """Length of each row's step in hours (steps may be irregular around fault events)."""
    t = df.index.to_numpy(float)
    if not len(t):
        return t
    step = run.step_s or 3600.0
    last = step
    duration = (run.manifest or {}).get("duration_s")
    if isinstance(duration, int | float) and 0 < duration - t[-1] < step:
        last = float(duration - t[-1])
    return np.append(np.diff(t), last) / 3600.0


def _fault_periods(steps: pd.DataFrame, faulted: np.ndarray, dur_h: np.ndarray) -> list[tuple]:
    """(start h, end h, fault names) of each run of consecutive faulted steps."""
    x = hours(steps)
    faults = _labels(steps, "active_faults").to_numpy()
    periods: list[tuple] = []
    i = 0
    while i < len(x):
        if not faulted[i]:
            i += 1
            continue
        j = i
        names: list[str] = []
        while j < len(x) and faulted[j]:
            names += [n for n in _names(faults[j]) if n not in names]
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
    if df is None or df.empty:
        return {}
    states = df.apply(pd.to_numeric, errors="coerce")
    delta = states.diff()
    out: dict[float, str] = {}
    for t, row in delta.iloc[1:].iterrows():
        parts = []
        for verb, sign in (("opened", -1), ("closed", 1)):
            cols = sorted((c for c in row.index if row[c] == sign), key=_branch_key)
            if cols:
                marked = [f"{c} (tie)" if c in TIE_BRANCHES else c for c in cols]
                parts.append(f"{verb} {', '.join(marked)}")
        if parts:
            out[float(t)] = "; ".join(parts)
    return out


def section_restoration(run: RunData) -> str | None:
    """Fault periods: load served, energised buses, islands, switching and energies."""
    steps = run.steps
    if steps is None or steps.empty or "active_faults" not in steps.columns:
        return None
    faulted = (_labels(steps, "active_faults") != "").to_numpy()
    if not faulted.any():
        return None
    dur_h = _durations_h(run, steps)
    periods = _fault_periods(steps, faulted, dur_h)
    n_buses = _energised(run, steps.index)
    actions = _switch_actions(run)
    plans = _restoration_plans(run)
    body = _restoration_intro(periods, plans)
    body += _figure(
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
    return _section("restoration", "Restoration timeline", body)


def _restoration_intro(periods: list[tuple], plans: pd.DataFrame | None) -> str:
    items = [
        f"{', '.join(names) or '?'}: {a:g} h – {b:g} h ({b - a:g} h)" for a, b, names in periods
    ]
    text = f"<p>Fault periods: {_esc('; '.join(items))}.</p>"
    if plans is not None:
        status = _statuses(plans)
        n_bad = int((status != "optimal").sum())
        wall = _num(plans, "wall_time_s")
        detail = (
            f"wall time median {wall.median():.2f} s, max {wall.max():.2f} s"
            if wall.notna().any()
            else "no wall times"
        )
        cls, lead = ("flag", "&#9888; ") if n_bad else ("note", "")
        text += (
            f'<p class="{cls}">{lead}{len(plans)} restoration plan(s), '
            f"{len(plans) - n_bad} optimal; {_esc(detail)}.</p>"
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
    islands = _labels(steps, "islands")
    collapsed = _labels(steps, "islands_collapsed")
    mgs: list[str] = list(run.exchange.columns) if run.exchange is not None else []
    for value in (*islands, *collapsed):
        mgs += [n for n in _names(value) if n not in mgs]
    soc_ok = run.soc is not None and not run.soc.empty and len(run.soc.columns) > 0
    heights = [2.4, 1.5, 0.5 + 0.35 * max(len(mgs), 1)] + ([2.0] if soc_ok else [])
    fig = _new_figure(10, 1.0 + sum(heights))
    axes = fig.subplots(len(heights), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    edges = np.append(hours(steps), hours(steps)[-1] + _durations_h(run, steps)[-1])
    window = _restoration_window(steps, periods, float(edges[-1]))
    for ax in axes:
        for a, b, _ in periods:
            ax.axvspan(a, b, color="#ff7f0e", alpha=0.15, linewidth=0)
        ax.grid(alpha=0.3)

    def stepped(series: pd.Series) -> np.ndarray:
        y = pd.to_numeric(series, errors="coerce").to_numpy(float)
        return np.append(y, y[-1:])

    ax = axes[0]
    demand, served = stepped(_num(steps, "load_demand_mw")), stepped(_num(steps, "load_served_mw"))
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
        ax.axvline(t / 3600.0, color="#7f7f7f", linestyle=":", linewidth=1.2)
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
                (a, 1.0),
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
        on = islands.map(lambda v, mg=mg: mg in _names(v)).to_numpy()
        spans = [(edges[i], edges[i + 1] - edges[i]) for i in np.flatnonzero(on)]
        if spans:
            ax.broken_barh(spans, (k - 0.35, 0.7), color=colours[k % 10])
        gone = collapsed.map(lambda v, mg=mg: mg in _names(v)).to_numpy()
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
            ax.plot(hours(soc), _num(soc, col), marker=".", label=col)
        ax.set_ylabel("SOC [MWh]")
        ax.legend(loc="best", fontsize="small")
    axes[0].set_xlim(*window)
    _time_axis(axes[-1], run)
    axes[-1].xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 2.5, 5, 10]))
    return fig


def _restoration_energy(
    run: RunData, steps: pd.DataFrame, faulted: np.ndarray, dur_h: np.ndarray
) -> str:
    def energy(series: pd.Series) -> float | None:
        p = pd.to_numeric(series, errors="coerce").to_numpy(float)
        if not np.isfinite(p[faulted]).any():
            return None
        return _round(float(np.nansum(p[faulted] * dur_h[faulted])), 4)

    rows: list[tuple[str, Any]] = [("fault duration [h]", _round(float(dur_h[faulted].sum()), 4))]
    for label, col in (
        ("load demand [MWh]", "load_demand_mw"),
        ("load served [MWh]", "load_served_mw"),
        ("unserved energy [MWh]", "load_unserved_mw"),
        ("demand not computed (power flow failed) [MWh]", "load_not_computed_mw"),
    ):
        if col in steps.columns:
            rows.append((label, energy(_num(steps, col))))
    for tier in _tiers(steps):
        e = [energy(_num(steps, f"tier{tier}_{kind}_mw")) for kind in ("demand", "served", "shed")]
        rows.append((f"tier {tier} demand / served / shed [MWh]", " / ".join(map(_fmt, e))))
    avail = _num(steps, "wind_avail_mw").fillna(0) + _num(steps, "pv_avail_mw").fillna(0)
    used = _num(steps, "wind_used_mw").fillna(0) + _num(steps, "pv_used_mw").fillna(0)
    if any(c in steps.columns for c in ("wind_avail_mw", "pv_avail_mw")):
        e_avail, e_used = energy(avail), energy(used)
        share = f" ({100 * e_used / e_avail:.1f} %)" if e_avail and e_used is not None else ""
        rows.append(("renewable (wind + PV) available [MWh]", e_avail))
        rows.append(("renewable (wind + PV) used [MWh]", f"{_fmt(e_used)}{share}"))
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
                    f"{_fmt(delivered[c])} / {_fmt(charged[c])}",
                )
            )
    return _table(["over the fault periods", "value"], rows)


def _tiers(steps: pd.DataFrame) -> list[str]:
    """Priority tiers with columns ``tier{t}_demand_mw`` in steps.csv."""
    cols = [c for c in steps.columns if c.startswith("tier") and c.endswith("_demand_mw")]
    return sorted(c.removeprefix("tier").removesuffix("_demand_mw") for c in cols)


def is_storage(unit: str) -> bool:
    """Microgrid storage (``MG1_ess``) or mobile storage (``MESS_b23``)."""
    return unit.endswith("_ess") or unit.startswith("MESS_")


def _restoration_events(
    run: RunData,
    steps: pd.DataFrame,
    faulted: np.ndarray,
    n_buses: pd.Series,
    actions: dict[float, str],
    plans: pd.DataFrame | None,
) -> str:
    islands, collapsed = _labels(steps, "islands"), _labels(steps, "islands_collapsed")
    faults = _labels(steps, "active_faults")
    unserved = _num(steps, "load_unserved_mw")
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
    plan_status = _statuses(plans) if plans is not None else None
    rows = []
    for i in np.flatnonzero(keep)[:MAX_TABLE_ROWS]:
        t = float(times[i])
        buses = n_buses.iloc[i]
        row: list[Any] = [
            round(t / 3600.0, 4),
            _timestamp(run, t),
            faults.iloc[i].replace(";", ", ") or ("(cleared)"),
            actions.get(t, ""),
            f"{int(buses)} / {len(IEEE_BUSES)}" if math.isfinite(buses) else None,
            islands.iloc[i].replace(";", ", "),
            collapsed.iloc[i].replace(";", ", "),
            _round(max(float(unserved.iloc[i]), 0.0), 4) if pd.notna(unserved.iloc[i]) else None,
        ]
        if plan_status is not None:
            row.append(plan_status.get(t, ""))
            row.append(_round(_num(plans, "wall_time_s").get(t, math.nan), 2))
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
    return _table(header, rows)


def section_convergence(run: RunData) -> str | None:
    """Steps whose power flow did not converge, or one sentence if all did."""
    df = run.steps
    if df is None or "converged" not in df.columns:
        return None
    ok = pd.to_numeric(df["converged"], errors="coerce") == 1
    bad = df.index[~ok.to_numpy()]
    if len(bad) == 0:
        body = f"<p>All {len(df)} power flows converged.</p>"
        return _section("convergence", "Power-flow convergence", body)
    step = run.step_s
    rows = [
        (int(round(t / step)) if step else "–", t, t / 3600.0, _timestamp(run, t))
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
        + _table(["step", "time_s", "time [h]", "timestamp"], rows)
        + (f"<p>… and {more} more.</p>" if more > 0 else "")
    )
    return _section("convergence", "Power-flow convergence", body)


# ------------------------------------------------------- optimising controllers


def section_p2p(run: RunData) -> str | None:
    """Planned first-period P2P trade of each microgrid pair over time."""
    df = run.p2p
    if df is None or df.empty or not len(df.columns):
        return None
    step_s = run.controller_step_s
    fig = _new_figure(10, 3.6)
    ax = fig.add_subplot()
    for col in df.columns:
        ax.step(*_step_series(run, df[col], step_s), where="post", label=col, linewidth=1.6)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("planned trade [MW]")
    ax.set_title("> 0: the first microgrid buys from the second", fontsize=10)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    _time_axis(ax, run)
    step_h = step_s / 3600.0
    rows = []
    for col in df.columns:
        p = _num(df, col)
        buyer, _, seller = col.partition("->")
        rows.append(
            (
                col,
                _round(float(p.clip(lower=0).sum()) * step_h, 4),
                _round(float(-p.clip(upper=0).sum()) * step_h, 4),
                _round(float(p.abs().max()), 4),
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
    body = _figure(fig, "planned P2P trades", caption) + _table(header, rows)
    return _section("p2p", "P2P trades", body)


def _statuses(plans: pd.DataFrame) -> pd.Series:
    if "status" not in plans.columns:
        return pd.Series("optimal", index=plans.index)
    return plans["status"].fillna("(none)").astype(str).str.strip()


def _not_optimal(plans: pd.DataFrame) -> pd.Series:
    """Plan status of every horizon that did not end "optimal"."""
    status = _statuses(plans)
    return status[status != "optimal"]


def _status_notes(run: RunData, plans: pd.DataFrame) -> str:
    bad = _not_optimal(plans)
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
    rows = [(t / 3600.0, _timestamp(run, t), s) for t, s in bad.iloc[:MAX_TABLE_ROWS].items()]
    return (
        f'<p class="flag">&#9888; {len(bad)} of {len(plans)} horizons not optimal: '
        f"{_esc('; '.join(parts))}.</p>" + _table(["plan time [h]", "timestamp", "status"], rows)
    )


def section_admm(run: RunData) -> str | None:
    """Residuals per ADMM iteration, and per horizon: iterations, gap, solve times, status.

    For a centralised run (no ADMM history) the same section lists the plans' statuses
    and solve times under the title "Optimiser plans".
    """
    plans, hist = _optimiser_plans(run), run.admm_history
    has_hist = (
        hist is not None
        and not hist.empty
        and "outer" in hist.columns
        and any(_has(hist, c) for c in ("r_outer_mw", "r_inner_mw"))
    )
    has_plans = plans is not None and not plans.empty
    if not has_hist and not has_plans:
        return None
    is_admm = (
        has_hist or run.controller == "admm" or (has_plans and _has(plans, "outer_iterations"))
    )
    body = _status_notes(run, plans) if has_plans else ""
    restoration = _restoration_plans(run)
    if restoration is not None:
        body += (
            f'<p class="note">{len(restoration)} restoration-mode plan(s) (fault steps) are '
            'not counted here; see <a href="#restoration">Restoration timeline</a>.</p>'
        )
    if has_plans and is_admm:
        body += _admm_sentence(plans)
    if has_hist:
        body += _figure(
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
            body += _figure(
                fig,
                "per-horizon iterations, gap and solve times",
                "Per controller step (plan time). Red bands: horizons not solved optimally. "
                "Gap: ADMM objective vs the centralised optimum of the same horizon.",
            )
        body += _horizon_table(run, plans)
    title = "ADMM convergence" if is_admm else "Optimiser plans"
    return _section("admm", title, body)


def _admm_sentence(plans: pd.DataFrame) -> str:
    parts = []
    conv = plans["converged"].astype(str).str.lower() if "converged" in plans.columns else None
    if conv is not None:
        n_conv = int((conv == "true").sum())
        parts.append(f"ADMM converged in {n_conv} of {len(plans)} horizons")
    outer = _num(plans, "outer_iterations")
    if outer.notna().any():
        inner = _num(plans, "inner_iterations")
        parts.append(
            f"outer iterations median {outer.median():g} (max {outer.max():g}), "
            f"inner iterations median {inner.median():g} (max {inner.max():g})"
        )
    gap = _num(plans, "gap_pct")
    if gap.notna().any():
        parts.append(
            f"gap to the centralised optimum median {gap.median():.3g} % (max {gap.max():.3g} %)"
        )
    t_admm, t_central = _num(plans, "admm_time_s"), _num(plans, "central_time_s")
    if t_admm.notna().any():
        text = f"ADMM solve time median {t_admm.median():.2f} s"
        if t_central.notna().any():
            text += f" vs centralised {t_central.median():.2f} s"
        parts.append(text)
    return f"<p>{_esc('; '.join(parts))}.</p>" if parts else ""


def _highlights(hist: pd.DataFrame, plans: pd.DataFrame | None) -> dict[float, str]:
    """A few horizons to draw in colour: first, slowest, fastest and any not optimal."""
    n_iter = hist.groupby(level=0).size()
    out: dict[float, str] = {}
    if plans is not None:
        for t, status in _not_optimal(plans).items():
            if t in n_iter.index and len(out) < 3:
                out[t] = status.split(":")[0]
    first = n_iter.index[0]
    out.setdefault(first, "first (cold start)")
    out.setdefault(n_iter.idxmax(), "most iterations")
    if len(n_iter) > 2:
        out.setdefault(n_iter.idxmin(), "fewest iterations")
    return {t: f"{t / 3600:g} h: {why}, {n_iter[t]} outer" for t, why in out.items()}


def _residual_figure(hist: pd.DataFrame, plans: pd.DataFrame | None) -> Figure:
    fig = _new_figure(10, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    highlight = _highlights(hist, plans)
    colours = matplotlib.colormaps["tab10"].colors
    panels = [
        ("r_outer_mw", "outer residual (PCC exchange)"),
        ("r_inner_mw", "inner residual (P2P trades)"),
    ]
    for ax, (col, title) in zip(axes, panels, strict=True):
        for t, group in hist.groupby(level=0):
            k = _num(group, "outer").to_numpy()
            r = _num(group, col).clip(lower=RESIDUAL_FLOOR_MW).to_numpy()
            if t not in highlight:
                ax.plot(k, r, color="grey", alpha=0.35, linewidth=0.8)
        for i, (t, label) in enumerate(highlight.items()):
            group = hist.loc[[t]]
            k = _num(group, "outer").to_numpy()
            r = _num(group, col).clip(lower=RESIDUAL_FLOOR_MW).to_numpy()
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
    panels = [(cols, label) for cols, label in panels if any(_has(plans, c) for c, _ in cols)]
    if not panels:
        return None
    fig = _new_figure(10, 1.0 + 1.9 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    x = hours(plans)
    step_h = run.controller_step_s / 3600.0
    bad = _not_optimal(plans).index.to_numpy(float) / 3600.0
    for ax, (cols, label) in zip(axes, panels, strict=True):
        for col, name in cols:
            if _has(plans, col):
                ax.plot(x, _num(plans, col), marker="o", markersize=4, label=name)
        for t in bad:
            ax.axvspan(t, t + step_h, color="#d62728", alpha=0.15, linewidth=0)
        if label.startswith("gap"):
            ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
    right = x.max() + (step_h if x.max() in bad else 0.3 * step_h)  # show a last red band
    axes[0].set_xlim(x.min() - 0.3 * step_h, right)
    _time_axis(axes[-1], run)
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
    cols = [c for c in cols if _has(plans, c[0])]
    status = _statuses(plans)
    opened = plans["open_branches"] if "open_branches" in plans.columns else None
    rows = []
    for i, t in enumerate(plans.index[:MAX_TABLE_ROWS]):
        row: list[Any] = [t / 3600.0, status.iloc[i]]
        for col, _, digits in cols:
            value = _num(plans, col).iloc[i]
            row.append(
                int(value) if digits == 0 and math.isfinite(value) else _round(value, digits)
            )
        if opened is not None:
            row.append(str(opened.iloc[i]).replace(";", ", ") if pd.notna(opened.iloc[i]) else "")
        rows.append(row)
    header = ["plan time [h]", "status"] + [c[1] for c in cols]
    if opened is not None:
        header.append("open branches")
    return (
        f"<details><summary>Per-horizon figures ({len(plans)} horizons)</summary>"
        f"{_table(header, rows)}</details>"
    )


def section_agent_costs(run: RunData) -> str | None:
    """Each agent's planned cost over the horizon of every plan."""
    plans = _optimiser_plans(run)
    if plans is None or plans.empty:
        return None
    cols = [
        c for c in plans.columns if c.startswith("cost_") and c.endswith("_cny") and _has(plans, c)
    ]
    if not cols:
        return None
    agents = [c.removeprefix("cost_").removesuffix("_cny") for c in cols]
    costs = pd.DataFrame({a: _num(plans, c) for a, c in zip(agents, cols, strict=True)})
    total = costs.sum(axis=1, min_count=1)
    fig = _new_figure(10, 3.8)
    ax = fig.add_subplot()
    x = hours(plans)
    for agent in agents:
        ax.plot(x, costs[agent], marker="o", markersize=4, label=agent)
    ax.plot(x, total, color="black", marker="s", markersize=4, label="sum of agents")
    if _has(plans, "central_objective_cny"):
        ax.plot(
            x,
            _num(plans, "central_objective_cny"),
            color="black",
            linestyle=":",
            label="centralised optimum",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("planned cost over the horizon [CNY]")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.grid(alpha=0.3)
    _time_axis(ax, run)
    rows = [
        (a, _round(costs[a].mean(), 1), _round(costs[a].min(), 1), _round(costs[a].max(), 1))
        for a in agents
    ]
    rows.append(
        ("sum of agents", _round(total.mean(), 1), _round(total.min(), 1), _round(total.max(), 1))
    )
    note = (
        "<p>Each agent's cost as planned over the whole horizon of each controller step "
        "(negative: net income). Horizons overlap, so these are not additive over the day; "
        "the realised day costs are in the summary. P2P payments and wheeling fees are "
        "transfers between the agents (one microgrid's payment is another's income, the "
        "wheeling fees the microgrids pay are the DSO's income): they shift cost between "
        "agents but cancel in the sum, which is the system objective.</p>"
    )
    not_conv = _not_optimal(plans).str.startswith("admm_not_converged")
    if not_conv.any():
        note += (
            f'<p class="note">{int(not_conv.sum())} horizon(s) with ADMM not converged: their '
            "costs are those of ADMM's last iterate, not of the centralised plan applied.</p>"
        )
    body = (
        _figure(fig, "planned cost per agent")
        + note
        + _table(["agent", "mean [CNY]", "min [CNY]", "max [CNY]"], rows)
    )
    return _section("agent-costs", "Costs per agent", body)


def section_validation(run: RunData) -> str | None:
    """The optimiser's first-period expectation against the AC power flow of each step."""
    val = run.validation
    if val is None or val.empty:
        return None
    unexpected = _num(val, "unanticipated_violation").fillna(0) > 0
    n_bad = int(unexpected.sum())
    what = (
        "steps with AC voltage violations or overloads the optimiser did not expect "
        f"(of {len(val)} steps run on an optimiser plan)"
    )
    if n_bad:
        body = f'<p class="flag">&#9888; {n_bad} {_esc(what)}.</p>'
        rows = [
            (
                t / 3600.0,
                _timestamp(run, t),
                int(_num(val, "ac_v_violations").get(t, 0) or 0),
                int(_num(val, "ac_overloads").get(t, 0) or 0),
                _round(_num(val, "max_dv_pu").get(t, math.nan), 5),
            )
            for t in val.index[unexpected.to_numpy()][:MAX_TABLE_ROWS]
        ]
        body += _table(
            ["time [h]", "timestamp", "bus voltage violations", "overloads", "max |ΔV| [pu]"],
            rows,
        )
    else:
        body = f'<p class="ok">&#10004; 0 {_esc(what)}.</p>'
    body += _figure(
        _validation_figure(run, val),
        "optimiser vs AC power flow",
        "Optimiser (DistFlow model, first plan period) against the AC power flow of each "
        "physical step. SOC: lines realised (start of step), points planned for the end of "
        "each plan's first period.",
    )
    body += _validation_table(run, val)
    return _section("validation", "Optimiser vs AC power flow", body)


def _validation_figure(run: RunData, val: pd.DataFrame) -> Figure:
    soc_ok = run.soc is not None and not run.soc.empty
    plan_ok = run.soc_plan is not None and not run.soc_plan.empty
    viol = _num(val, "ac_v_violations").fillna(0) + _num(val, "ac_overloads").fillna(0)
    n_panels = 2 + int(soc_ok or plan_ok) + int(bool((viol > 0).any()))
    fig = _new_figure(10, 1.0 + 2.1 * n_panels)
    axes = list(fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0])
    ax = axes.pop(0)
    ax.step(*_step_series(run, val["max_dv_pu"]), where="post", color="#9467bd")
    ax.set_ylabel("max |V_opt − V_ac| [pu]")
    ax.grid(alpha=0.3)
    ax = axes.pop(0)
    for col, label, style in (
        ("p_loss_model_mw", "model (DistFlow)", "--"),
        ("p_loss_ac_mw", "AC power flow", "-"),
    ):
        if col in val.columns:
            ax.step(*_step_series(run, val[col]), where="post", linestyle=style, label=label)
    ax.set_ylabel("IEEE-branch losses [MW]")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    if soc_ok or plan_ok:
        _soc_plan_axes(run, axes.pop(0))
    if axes:
        ax = axes.pop(0)
        x, _ = _step_series(run, val.iloc[:, 0])
        width = np.diff(x)
        v = _num(val, "ac_v_violations").fillna(0).to_numpy()
        o = _num(val, "ac_overloads").fillna(0).to_numpy()
        ax.bar(x[:-1], v, width=width, align="edge", color="#d62728", label="bus voltage")
        ax.bar(x[:-1], o, width=width, bottom=v, align="edge", color="#ff7f0e", label="overload")
        ax.set_ylabel("AC violations")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
    all_axes = fig.axes
    _time_axis(all_axes[-1], run)
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
            ax.plot(hours(real), _num(real, col), color=colour, linewidth=1.4, label=col)
        if plan is not None and col in plan.columns:
            ax.scatter(
                hours(plan) + PLAN_PERIOD_S / 3600.0,
                _num(plan, col),
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
            planned = _num(plan, col).loc[[t - PLAN_PERIOD_S for t in matched]].to_numpy()
            realised = _num(real, col).loc[matched].to_numpy()
            out[col] = float(np.nanmax(np.abs(planned - realised)))
    return out


def _validation_table(run: RunData, val: pd.DataFrame) -> str:
    rows: list[tuple[str, Any]] = []
    dv = _num(val, "max_dv_pu")
    if dv.notna().any():
        t = dv.idxmax()
        bus = val["max_dv_bus"].get(t) if "max_dv_bus" in val.columns else None
        where = f" (bus {bus}, {t / 3600:g} h)" if bus is not None and pd.notna(bus) else ""
        rows.append(("max |V_opt − V_ac|", f"{dv.max():.5f} pu{where}"))
        rows.append(("mean max |V_opt − V_ac|", f"{dv.mean():.5f} pu"))
    err = _num(val, "loss_error_mw")
    if err.notna().any():
        rows.append(("loss error AC − model, mean", f"{err.mean():.5f} MW"))
        rows.append(("loss error AC − model, max |·|", f"{err.abs().max():.5f} MW"))
        ac = _num(val, "p_loss_ac_mw").replace(0.0, np.nan)
        pct = (100 * err / ac).mean()
        if math.isfinite(pct):
            rows.append(("loss error, mean relative to AC", f"{pct:.2f} %"))
    for col, e in _soc_plan_errors(run).items():
        text = f"{e:.4f} MWh" if e >= 1e-4 else "< 0.0001 MWh"
        rows.append((f"SOC planned − realised, max |·|, {col}", text))
    return _table(["figure", "value"], rows) if rows else ""


# -------------------------------------------------------------------- comparison

COMPARE_EXTRA_KEYS = (
    "energy_unserved_mwh",
    "energy_not_computed_mwh",
    "energy_losses_mwh",
    "energy_substation_mwh",
    "wind_used_mwh",
    "vm_min_pu",
    "n_voltage_violations",
    "n_overloads",
)


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
        body += _figure(_comparison_figure(keys, this_s, other_s, names), "cost comparison")
        body += _table(
            ["cost term [CNY]", *names, "difference (this − other)"],
            _comparison_rows(keys, this_s, other_s),
        )
    else:
        body += "<p>No cost figures (summary.json cost_*) to compare.</p>"
    extra = [k for k in COMPARE_EXTRA_KEYS if k in this_s and k in other_s]
    if extra:
        body += _table(
            ["figure", *names, "difference (this − other)"],
            _comparison_rows(extra, this_s, other_s),
        )
    return _section("comparison", f"Comparison with {other.controller}", body)


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
    return "".join(f'<p class="note">{_esc(n)}</p>' for n in notes)


def _comparison_rows(keys: list[str], a: dict, b: dict) -> list[tuple]:
    rows = []
    for key in keys:
        va, vb = _number(a, key), _number(b, key)
        diff = va - vb if va is not None and vb is not None else None
        rows.append((key, *(_round(v, 4) if v is not None else None for v in (va, vb, diff))))
    return rows


def _comparison_figure(keys: list[str], a: dict, b: dict, names: tuple[str, str]) -> Figure:
    fig = _new_figure(10, 1.0 + 0.45 * len(keys))
    ax = fig.add_subplot()
    y = np.arange(len(keys))
    for offset, data, name in ((-0.2, a, names[0]), (0.2, b, names[1])):
        values = [_number(data, k) for k in keys]
        ax.barh(y + offset, [np.nan if v is None else v for v in values], height=0.4, label=name)
    ax.set_yticks(y, [k.removeprefix("cost_").removesuffix("_cny") for k in keys])
    ax.invert_yaxis()
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("cost over the run [CNY]")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, axis="x")
    return fig


Section = Callable[[RunData], str | None]

SECTIONS: list[Section] = [
    section_header,
    section_summary,
    section_comparison,
    section_voltages,
    section_soc,
    section_exchange,
    section_losses,
    section_switches,
    section_restoration,
    section_p2p,
    section_admm,
    section_agent_costs,
    section_validation,
    section_convergence,
]


# ------------------------------------------------------------------------ output

_CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 0.6em 0; } img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 0.9em; }
.flag { background: #fde2e1; border-left: 5px solid #c0392b; padding: 6px 10px; font-weight: bold; }
.ok { background: #e3f4e1; border-left: 5px solid #2e8b3d; padding: 6px 10px; font-weight: bold; }
summary { cursor: pointer; color: #555; }
.section-error { background: #fff3cd; border-left: 5px solid #e0a800; padding: 6px 10px; }
"""


def _render_section(section: Section, run: RunData) -> str | None:
    """Run one section; a failing section becomes a visible note, not a lost report."""
    try:
        return section(run)
    except Exception as exc:  # one bad section must not sink the whole report
        name = getattr(section, "__name__", repr(section))
        return f'<p class="section-error">Section {_esc(name)} failed: {_esc(repr(exc))}</p>'


def render_report(run: RunData, sections: Sequence[Section] = SECTIONS) -> str:
    """The complete HTML page for ``run``."""
    parts = [p for p in (_render_section(s, run) for s in sections) if p]
    title = (run.manifest or {}).get("scenario_name") or run.run_dir.name
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>mgcosim report: {_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_report(run_dir: Path, out: Path | None = None, compare: Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``run_dir/report.html``).

    With ``compare`` (a second run directory) the report gains a section setting both
    runs' cost terms side by side.
    """
    run_dir = Path(run_dir)
    for directory in (run_dir, compare):
        if directory is not None and not Path(directory).is_dir():
            raise FileNotFoundError(f"run directory {directory} does not exist")
    out = run_dir / "report.html" if out is None else Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run = RunData.load(run_dir)
    if compare is not None:
        run.compare = RunData.load(Path(compare))
    out.write_text(render_report(run), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mgcosim.sim.report RUN_DIR [-o OUT] [--compare OTHER_RUN_DIR]``."""
    parser = argparse.ArgumentParser(description="Write the HTML report of a run directory.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=None)
    parser.add_argument("--compare", type=Path, default=None, help="a second run directory")
    args = parser.parse_args(argv)
    print(write_report(args.run_dir, args.out, args.compare))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
