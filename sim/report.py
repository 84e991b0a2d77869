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

The sections live in ``sim/report_sections.py`` (every run), ``report_figures.py``
(branch loading, set-points, curtailment), ``report_feeder.py`` (feeder voltage profile),
``report_network.py`` (network diagram), ``report_restoration.py``, ``report_optimiser.py``
(P2P, ADMM, costs), ``report_validation.py`` (optimiser vs AC) and ``report_summary.py``;
shared helpers (the run's data, the clock-time axis) in ``report_base.py``.

Extending: a section is a function ``(run: RunData) -> str | None`` returning an
HTML fragment, or ``None`` when the run has no data for it. Append it to
``SECTIONS`` (or pass your own list to ``render_report``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from mgcosim.sim.report_base import RunData, esc
from mgcosim.sim.report_feeder import section_feeder_profile
from mgcosim.sim.report_figures import (
    section_branch_loading,
    section_curtailment,
    section_setpoints,
)
from mgcosim.sim.report_network import section_network
from mgcosim.sim.report_optimiser import (
    section_admm,
    section_agent_costs,
    section_p2p,
)
from mgcosim.sim.report_restoration import section_restoration
from mgcosim.sim.report_sections import (
    section_convergence,
    section_exchange,
    section_header,
    section_losses,
    section_soc,
    section_switches,
    section_voltages,
)
from mgcosim.sim.report_summary import section_comparison, section_summary
from mgcosim.sim.report_validation import section_validation

__all__ = [
    "SECTIONS",
    "RunData",
    "main",
    "render_report",
    "write_report",
    "section_admm",
    "section_agent_costs",
    "section_branch_loading",
    "section_comparison",
    "section_convergence",
    "section_curtailment",
    "section_exchange",
    "section_feeder_profile",
    "section_header",
    "section_losses",
    "section_network",
    "section_p2p",
    "section_restoration",
    "section_setpoints",
    "section_soc",
    "section_summary",
    "section_switches",
    "section_validation",
    "section_voltages",
]

Section = Callable[[RunData], str | None]

SECTIONS: list[Section] = [
    section_header,
    section_summary,
    section_comparison,
    section_voltages,
    section_feeder_profile,
    section_branch_loading,
    section_network,
    section_soc,
    section_exchange,
    section_setpoints,
    section_curtailment,
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
        return f'<p class="section-error">Section {esc(name)} failed: {esc(repr(exc))}</p>'


def render_report(run: RunData, sections: Sequence[Section] = SECTIONS) -> str:
    """The complete HTML page for ``run``."""
    parts = [p for p in (_render_section(s, run) for s in sections) if p]
    title = (run.manifest or {}).get("scenario_name") or run.run_dir.name
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>mgcosim report: {esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
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
