"""Shared parts of the HTML run report (:mod:`sim.report`): the run's data, HTML and
figure helpers and the clock-time axis.

Every CSV frame is indexed by ``time_s`` (seconds since the scenario start). Figures put
time on a clock-time axis: ``x_of`` turns seconds into matplotlib date numbers from the
scenario start in ``manifest.json`` (hours since the start when that is unknown).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mgcosim.sim.schema import BY_KEY, csv_files, json_files

V_MIN_PU = 0.9
V_MAX_PU = 1.1
MAX_TABLE_ROWS = 200
# one definition of the optimiser's loss error everywhere:
# sim.results_figures.relative_loss_error_pct
LOSS_ERROR_LABEL = "loss error (AC − model) / AC over the run"
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
# written by every current run, but not by older ones (nor by the synthetic test runs)
EXTRA_CSV_FILES: dict[str, str] = {
    key: BY_KEY[key].file
    for key in ("setpoints", "available", "renewable_available", "renewable_p")
    if key in BY_KEY
}
OPTIONAL_CSV_FILES: dict[str, str] = csv_files(optional=True) | EXTRA_CSV_FILES
JSON_FILES: dict[str, str] = json_files()


# --------------------------------------------------------------------------- data


def with_timings(plans: pd.DataFrame | None, timings: pd.DataFrame | None):
    """The plans with their wall-clock times (kept apart in timings.csv) as columns."""
    if plans is None or timings is None:
        return plans
    new = [c for c in timings.columns if c not in plans.columns]
    return plans.join(timings[new])


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
    setpoints: pd.DataFrame | None = None
    available: pd.DataFrame | None = None
    renewable_available: pd.DataFrame | None = None  # wind/PV only, generation > 0
    renewable_p: pd.DataFrame | None = None
    soc: pd.DataFrame | None = None
    exchange: pd.DataFrame | None = None
    plans: pd.DataFrame | None = None
    timings: pd.DataFrame | None = None  # wall-clock times per plan (timings.csv)
    admm_history: pd.DataFrame | None = None
    p2p: pd.DataFrame | None = None
    soc_plan: pd.DataFrame | None = None
    validation: pd.DataFrame | None = None
    compare: RunData | None = None  # a second run to compare with (write_report(compare=))
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # derived once per run
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
        run.plans = with_timings(run.plans, run.timings)
        if run.summary is not None and run.manifest:
            run.summary = run.summary | run.manifest.get("timing", {})
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
    df = df.set_index("time_s")
    df.columns = [str(c) for c in df.columns]
    return df.drop(columns=[c for c in df.columns if is_time_column(df, c)])


TIME_COLUMNS = frozenset({"time_h", "hour", "datetime", "timestamp", "time", "time_utc", "date"})


def is_time_column(df: pd.DataFrame, col: str) -> bool:
    """Whether ``col`` is another time column beside ``time_s`` (a clock-time or hour column a
    newer writer may add): by name, or text whose name speaks of a date or time."""
    name = col.lower()
    if name in TIME_COLUMNS:
        return True
    textual = not pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
    return textual and ("date" in name or "time" in name)


def hours(df: pd.DataFrame) -> np.ndarray:
    """Row times of ``df`` in hours since the scenario start."""
    return df.index.to_numpy(float) / 3600.0


# ------------------------------------------------------------------ html helpers


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Compact text for a scalar (floats to 6 significant digits)."""
    if value is None:
        return "–"
    if isinstance(value, bool | int | str):
        return esc(value)
    if isinstance(value, float | np.floating):
        return "–" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return esc(json.dumps(value, default=str))


def html_table(header: Sequence[str] | None, rows: Iterable[Sequence[Any]]) -> str:
    """HTML table of formatted scalars; no header row when ``header`` is None."""
    head = ""
    if header is not None:
        head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def html_section(sid: str, title: str, body: str) -> str:
    return f'<section id="{esc(sid)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def html_figure(fig: Figure, alt: str, caption: str = "", fig_id: str = "") -> str:
    """Render ``fig`` to an embedded PNG ``<figure>`` (with the HTML id ``fig_id``)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    ident = f' id="{esc(fig_id)}"' if fig_id else ""
    return f'<figure{ident}><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def x_per_s(run: RunData) -> float:
    """Plot x units per second: matplotlib date numbers (days) when the start is known, else
    hours since the start."""
    return 1.0 / 86400.0 if run.start is not None else 1.0 / 3600.0


def x_of(run: RunData, time_s: Any) -> np.ndarray:
    """Plot x of ``time_s`` (seconds since the start): clock time as matplotlib date numbers
    (the scenario start from manifest.json), hours since the start when it is unknown."""
    t = np.asarray(time_s, dtype=float)
    start = run.start
    if start is None:
        return t / 3600.0
    if start.tzinfo is not None:  # keep the scenario's wall clock
        start = start.tz_localize(None)
    return mdates.date2num(start.to_pydatetime()) + t / 86400.0


def xs(run: RunData, df: pd.DataFrame | pd.Series) -> np.ndarray:
    """Plot x of the rows of ``df`` (indexed by ``time_s``)."""
    return x_of(run, df.index.to_numpy(float))


def time_axis(ax: Axes, run: RunData) -> None:
    """Clock-time x axis (dates and times), or hours since the start without a known start."""
    start = run.start
    if start is None:
        ax.set_xlabel("hours since start (start time unknown: manifest.json missing)")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 6, 10]))
        return
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel(f"clock time (scenario start {start:%Y-%m-%d %H:%M})")


def time_edges(run: RunData, df: pd.DataFrame, step_s: float | None = None) -> np.ndarray:
    """Step boundaries on the time axis: the row times plus the end of the last step.

    ``step_s`` is the row spacing (default: the physical step).
    """
    t = df.index.to_numpy(float)
    step = step_s or run.step_s or 3600.0
    return x_of(run, np.append(t, t[-1] + step) if len(t) else t)


def step_series(
    run: RunData, series: pd.Series, step_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """x/y for a step plot in which the last step keeps its full width."""
    y = pd.to_numeric(series, errors="coerce").to_numpy(float)
    return time_edges(run, series.to_frame(), step_s), np.append(y, y[-1:])


def num(df: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` as floats (all NaN when absent)."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


def missing(df: pd.DataFrame | None) -> bool:
    """The table was not written, or holds no values."""
    return df is None or df.empty


def has(df: pd.DataFrame | None, col: str) -> bool:
    """Whether ``df`` has column ``col`` with at least one number in it."""
    return df is not None and bool(num(df, col).notna().any())


def rounded(value: float, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits) + 0.0  # + 0.0: no "-0"


def energy_mwh(run: RunData, series: pd.Series) -> float:
    """Energy of a per-step MW series (NaN steps count as zero)."""
    step_h = (run.step_s or 0.0) / 3600.0
    return float(np.nansum(pd.to_numeric(series, errors="coerce").to_numpy(float)) * step_h)


def step_hours(run: RunData, df: pd.DataFrame) -> np.ndarray:
    """Length of each row's step in hours: until the next row, the last one a physical step
    (or until the end of the run); steps may be irregular around fault events."""
    t = df.index.to_numpy(float)
    if not len(t):
        return t
    step = run.step_s or 3600.0
    last = step
    duration = (run.manifest or {}).get("duration_s")
    if isinstance(duration, int | float) and 0 < duration - t[-1] < step:
        last = float(duration - t[-1])
    return np.append(np.diff(t), last) / 3600.0


def branch_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def timestamp(run: RunData, time_s: float) -> str:
    start = run.start
    if start is None:
        return "–"
    return f"{start + pd.to_timedelta(time_s, unit='s'):%Y-%m-%d %H:%M}"


def number(mapping: dict[str, Any], key: str) -> float | None:
    value = mapping.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ------------------------------------------------------------------- plans


TIE_BRANCHES = frozenset(str(b) for b in range(33, 38))  # normally open IEEE tie lines
RESTORATION_MODE = "restoration"
IEEE_BUSES = [str(b) for b in range(1, 34)]
AFTER_FAULT_STEPS = 4  # at most this many steps after a fault are listed (if still eventful)


def label_column(df: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` of ";"-joined names as stripped strings ("" when empty or absent)."""
    if col not in df.columns:
        return pd.Series("", index=df.index, dtype=object)
    return df[col].fillna("").astype(str).str.strip()


def split_names(value: str) -> list[str]:
    return [n.strip() for n in str(value).split(";") if n.strip()]


def restoration_plans(run: RunData) -> pd.DataFrame | None:
    """Rows of plans.csv written in restoration mode (None when there are none)."""
    plans = run.plans
    if missing(plans) or "mode" not in plans.columns:
        return None
    rest = plans[label_column(plans, "mode") == RESTORATION_MODE]
    return rest if not rest.empty else None


def optimiser_plans(run: RunData) -> pd.DataFrame | None:
    """Rows of plans.csv of the normal optimiser (restoration-mode rows left out)."""
    plans = run.plans
    if missing(plans):
        return None
    if "mode" in plans.columns:
        plans = plans[label_column(plans, "mode") != RESTORATION_MODE]
    return plans if not plans.empty else None


def plan_statuses(plans: pd.DataFrame) -> pd.Series:
    if "status" not in plans.columns:
        return pd.Series("optimal", index=plans.index)
    return plans["status"].fillna("(none)").astype(str).str.strip()


def not_optimal(plans: pd.DataFrame) -> pd.Series:
    """Plan status of every horizon that did not end "optimal"."""
    status = plan_statuses(plans)
    return status[status != "optimal"]


def is_storage(unit: str) -> bool:
    """Microgrid storage (``MG1_ess``) or mobile storage (``MESS_b23``)."""
    return unit.endswith("_ess") or unit.startswith("MESS_")
