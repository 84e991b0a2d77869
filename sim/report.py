"""Self-contained HTML report of one run directory.

``write_report(run_dir)`` reads the files a run leaves behind (``manifest.json``,
``summary.json`` and the per-step CSV time series) and writes one HTML page with
the figures embedded as base64 PNG (matplotlib Agg, no pyplot state, no external
CSS/JS). Missing or unreadable files are tolerated, so an interrupted run still
renders.

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

V_MIN_PU = 0.9
V_MAX_PU = 1.1
MAX_TABLE_ROWS = 200

CSV_FILES: dict[str, str] = {
    "steps": "steps.csv",
    "bus_vm": "bus_vm_pu.csv",
    "branch_loading": "branch_loading_percent.csv",
    "branch_p_from": "branch_p_from_mw.csv",
    "switch_closed": "switch_closed.csv",
    "unit_p": "unit_p_mw.csv",
    "soc": "soc_mwh.csv",
    "exchange": "exchange_p_mw.csv",
}
JSON_FILES: dict[str, str] = {"manifest": "manifest.json", "summary": "summary.json"}


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
        return run

    def _read(self, name: str, reader: Callable[[Path], Any]) -> Any:
        path = self.run_dir / name
        if not path.is_file():
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
    df = df.set_index("time_s")
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


def _time_edges(run: RunData, df: pd.DataFrame) -> np.ndarray:
    """Step boundaries in hours: the row times plus the end of the last step."""
    x = hours(df)
    step_h = (run.step_s or 3600.0) / 3600.0
    return np.append(x, x[-1] + step_h) if len(x) else x


def _step_series(run: RunData, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """x/y for a step plot in which the last step keeps its full width."""
    y = pd.to_numeric(series, errors="coerce").to_numpy(float)
    return _time_edges(run, series.to_frame()), np.append(y, y[-1:])


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
    if run.manifest is None:
        return "unknown (manifest.json missing)"
    status = str(run.manifest.get("status", "unknown"))
    done, total = run.steps_done, run.steps_total
    of = f"{done if done is not None else '?'} of {total if total is not None else '?'} steps"
    if status == "completed":
        return f"completed ({of})"
    if status == "running":
        return f"running (or stopped without notice) after {of}"
    return f"{status} after {of}"


def _status_flag(run: RunData) -> str:
    if run.manifest is not None and run.manifest.get("status") == "completed":
        return ""
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
    body = (
        f'<p class="flag">{len(bad)} of {len(df)} steps without a converged power flow '
        "(their network values are empty):</p>"
        + _table(["step", "time_s", "time [h]", "timestamp"], rows)
        + (f"<p>… and {more} more.</p>" if more > 0 else "")
    )
    return _section("convergence", "Power-flow convergence", body)


Section = Callable[[RunData], str | None]

SECTIONS: list[Section] = [
    section_header,
    section_summary,
    section_voltages,
    section_soc,
    section_exchange,
    section_losses,
    section_switches,
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


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``run_dir/report.html``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    out = run_dir / "report.html" if out is None else Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(RunData.load(run_dir)), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.report RUN_DIR [-o OUT]``."""
    parser = argparse.ArgumentParser(description="Write the HTML report of a run directory.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=None)
    args = parser.parse_args(argv)
    print(write_report(args.run_dir, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
