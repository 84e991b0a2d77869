"""``mgcosim restore``: the command line (arguments, tables, the residual plot).

The studies are :mod:`sim.restore` (a scenario's fault event, the three methods compared)
and :mod:`sim.restore_n1` (the N-1 sweep); this module parses, prints and writes files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mgcosim.scenarios.loader import FaultEvent, Scenario, ScenarioError, load_scenario
from mgcosim.sim.argtypes import non_negative_float, positive_int, write_json_report
from mgcosim.sim.mess import placed
from mgcosim.sim.restore import (
    PERIOD_S,
    PUBLISHED_ADMM,
    STUDY_NODE_LIMIT,
    TIERS,
    first_fault,
    run_restore,
)
from mgcosim.sim.restore_n1 import (
    N1_PERIODS,
    V_BAND_PU,
    format_n1_row,
    format_n1_totals,
    n1_header,
    n1_wind_mw,
    num_text,
    run_n1_sweep,
    wind_source,
)

COLUMNS = (
    ("method", 12),
    ("shed T1", 8),
    ("T2", 8),
    ("T3", 8),
    ("MG", 8),
    ("total", 8),
    ("RE used", 8),
    ("curtail", 8),
    ("switch", 6),
    ("solve s", 7),
    ("status (gap)", 20),
    ("AC loss kW", 10),
    ("AC Vmin", 7),
    ("collapsed", 9),
)


def _row(values: list[str]) -> str:
    first, *rest = zip(values, COLUMNS, strict=True)
    return f"  {first[0]:<{first[1][1]}s}" + "".join(f" {v:>{c[1]}s}" for v, c in rest)


def format_table(r: dict) -> str:
    f = r["fault"]
    what = f"branch {f['branch_ieee']}" if f["kind"] == "branch" else "main grid"
    lines = [
        f"Restoration of {r['scenario']!r}: fault {f['name']!r} ({what}) at "
        f"{f['start_h']:g} h, repaired after {f['repair_h']:g} h; {r['n_periods']} periods of "
        f"{60 * r['dt_h']:g} min (margin {r['margin_h']:g} h)",
        "  day-ahead demand/PV/wind; storage at the scenario's initial SOC "
        + ", ".join(f"{g} {v:g} MWh" for g, v in r["initial_soc_mwh"].items())
        + " (the co-simulation uses the measured SOC)",
        "  energy in kWh over the horizon; shed by DSO tier, MG = microgrid loads; "
        "AC check of period 1",
        _row([c for c, _ in COLUMNS]),
    ]
    for name, m in r["methods"].items():
        tiers = m["shed_kwh_by_tier"]
        collapsed = m["ac_islands_collapsed"]
        lines.append(
            _row(
                [
                    name,
                    *(num_text(tiers[str(k)]) for k in TIERS),
                    num_text(m["shed_kwh_mg"]),
                    num_text(m["shed_kwh_total"]),
                    num_text(m["renewable_kwh"]),
                    num_text(m["curtailed_kwh"]),
                    str(m["switch_actions"]),
                    f"{m['solve_time_s']:.2f}",
                    f"{m['status']} ({100 * max(m['mip_gap'], 0.0):.3f} %)",
                    num_text(m["ac_losses_kw"]) if m["ac_converged"] else "no conv.",
                    num_text(m["ac_vmin_pu"], 4),
                    ",".join(collapsed) if collapsed else "none",
                ]
            )
        )
    lines.append(admm_line(r))
    for name, m in r["methods"].items():
        lines.append(
            f"  {name:<12s} period 1: ties closed {m['closed_tie_branches']}, "
            f"sources at buses {m['source_buses_period1']}, "
            f"{len(m['energised_buses_period1'])} of 33 buses energised, "
            f"tier 1 fully restored: {m['tier1_fully_restored']}"
        )
    return "\n".join(lines)


def admm_line(r: dict) -> str:
    m = r["methods"].get("admm")
    if m is None:
        return f"  ADMM not run: {r['admm_skipped']}"
    state = "converged" if m["admm_converged"] else "stopped at the iteration limit"
    return (
        f"  ADMM: {m['admm_outer_iterations']} outer / {m['admm_inner_iterations']} inner "
        f"iterations ({state}), objective {m['admm_gap_to_centralised_pct']:+.3f} % vs "
        f"centralised, time {100 * m['admm_time_ratio_to_centralised']:.0f} % of the "
        f"centralised solve ({PUBLISHED_ADMM}); boundary branches {m['admm_boundary_branches']}, "
        f"radial {m['admm_radial']}"
    )


def write_residual_plot(report: dict, path_text: str | None) -> None:
    """The ADMM's primal and dual residuals per iteration (PNG)."""
    m = report["methods"].get("admm")
    if not path_text or m is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = m["admm_history"]
    it = [h["iteration"] for h in hist]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (
        ("primal_residual", "outer primal (boundary P, Q, V, switch)"),
        ("dual_residual", "outer dual"),
        ("inner_primal_residual", "inner primal (storage power, SOC)"),
        ("inner_dual_residual", "inner dual"),
    ):
        ax.semilogy(it, [max(h[key], 1e-8) for h in hist], label=label)
    ax.axhline(1e-3, color="grey", linestyle=":", label="threshold 1e-3")
    ax.set_xlabel("outer iteration")
    ax.set_ylabel("residual (max norm)")
    ax.set_title(f"Restoration ADMM, {report['scenario']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  residual plot {path}")


def cmd_restore(args: argparse.Namespace) -> int:
    from mgcosim.controllers.errors import OptimisationError

    scenario = load_scenario(args.scenario)
    if args.n1:
        return cmd_n1(args, scenario)
    fault = first_fault(scenario)  # refuse before any solve
    if fault.kind == "main_grid":
        if scenario.mess.placement != "none":
            print("note: the coordination strategies run without the scenario's mobile storage")
        return cmd_blackout(args, scenario, fault)
    try:
        scenario = placed(scenario)
        report = run_restore(scenario, args.margin_h, args.node_limit, args.admm_max_outer)
    except OptimisationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if scenario.data.mess:
        buses = [u.bus_ieee for u in scenario.data.mess]
        print(f"mobile storage ({scenario.mess.placement} placement) at buses {buses}")
        report["mess_buses"] = buses
    print(format_table(report))
    write_json_report(args.json, report)
    write_residual_plot(report, args.plot)
    return 0


def blackout_event(scenario: Scenario, fault: FaultEvent) -> tuple[int, float, tuple[int, ...]]:
    """Hour, repair window and damaged branches of a main-grid loss (faults at its start)."""
    hour = fault.start_s / 3600
    if abs(hour - round(hour)) > 1e-9:
        raise ScenarioError(
            scenario.path,
            "faults.start_h",
            f"the main-grid loss starts at {hour:g} h; the coordination strategies use hourly "
            "profiles",
            "give start_h as a whole hour",
        )
    damaged = tuple(
        sorted(
            f.branch_ieee
            for f in scenario.faults
            if f.kind == "branch" and f.start_s == fault.start_s and f.branch_ieee is not None
        )
    )
    return int(round(hour)) % 24, fault.repair_s / 3600, damaged


def cmd_blackout(args: argparse.Namespace, scenario: Scenario, fault: FaultEvent) -> int:
    """Main grid lost: the microgrid coordination strategies of seed 003 (no sharing,
    central, feasible-region projection)."""
    from mgcosim.sim.coordinate import CoordinationStudy, print_study

    hour, window_h, damaged = blackout_event(scenario, fault)
    print(
        f"Main grid lost in {scenario.name!r} at {hour} h for {window_h:g} h, damaged branches "
        f"{list(damaged)}: microgrids coordinated by no sharing, central dispatch and "
        "feasible-region projection"
    )
    study = CoordinationStudy(hour=hour, window_h=window_h, faulted=tuple(damaged))
    return print_study(study, args.json)


def cmd_n1(args: argparse.Namespace, scenario: Scenario) -> int:
    header_done = False

    def progress(row: dict) -> None:
        nonlocal header_done
        if not header_done:
            print(n1_header(report_stub), flush=True)
            header_done = True
        print(format_n1_row(row), flush=True)

    wind_mw, hour = n1_wind_mw(scenario, args.wind_pu)
    report_stub = {  # the header before the first case is solved
        "scenario": scenario.name,
        "n_periods": args.periods,
        "dt_h": PERIOD_S / 3600,
        "assumptions": {
            "wind_mw": wind_mw,
            "wind_source": wind_source(args.wind_pu, hour),
            "v_band_pu": list(V_BAND_PU),
        },
    }
    try:
        report = run_n1_sweep(
            scenario, args.periods, args.branches, args.node_limit, args.wind_pu, progress
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_n1_totals(report))
    write_json_report(args.json, report)
    return 0


def _branch_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of branches"
        ) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mgcosim restore`` on the CLI's subparsers."""
    p = sub.add_parser(
        "restore",
        help="restore supply after a scenario's fault: uncoordinated, ADMM-coordinated "
        "and central plans compared",
    )
    p.add_argument("scenario", help="scenario TOML file with at least one [[faults]] table")
    p.add_argument(
        "--margin-h",
        type=non_negative_float,
        default=1.0,
        help="hours after the repair kept in the horizon (default 1)",
    )
    p.add_argument(
        "--node-limit",
        type=positive_int,
        default=STUDY_NODE_LIMIT,
        help=f"branch-and-bound nodes per MILP solve (default {STUDY_NODE_LIMIT}); "
        "a plan stopped there is reported with its gap",
    )
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--plot", help="write the ADMM residuals per iteration to this PNG file")
    p.add_argument(
        "--admm-max-outer",
        type=positive_int,
        default=60,
        help="outer ADMM iterations at most (default 60)",
    )
    n1 = p.add_argument_group("N-1 sweep")
    n1.add_argument(
        "--n1",
        action="store_true",
        help="instead of the scenario's fault: a fault on every sectional branch at peak load",
    )
    n1.add_argument(
        "--periods",
        type=positive_int,
        default=N1_PERIODS,
        help=f"15-min periods per N-1 case (default {N1_PERIODS})",
    )
    n1.add_argument(
        "--branches", type=_branch_list, help="N-1: only these IEEE branches, e.g. 1,9,12"
    )
    n1.add_argument(
        "--wind-pu",
        type=non_negative_float,
        help="N-1: wind at this share of the rating (default: the scenario's day-ahead "
        "wind at the DSO peak-load hour)",
    )
    p.set_defaults(func=cmd_restore)
