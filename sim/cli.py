"""The ``mgcosim`` command line: run, report, validate."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from scenarios.loader import Scenario, ScenarioError, default_scenario_path, load_scenario


def _quiet_mosaik_logs() -> None:
    """mosaik logs every simulator start at INFO; keep warnings and errors only."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.4f}"
    return str(value)


def print_summary(summary: dict, out_dir: Path) -> None:
    """A readable summary of a run's figures."""
    s = summary
    lines = [
        f"Results in {out_dir}",
        f"  steps                {s['steps']} ({s['n_not_converged']} power flows not converged)",
        f"  energy demand        {_fmt(s['energy_demand_mwh'])} MWh",
        f"  energy served        {_fmt(s['energy_served_mwh'])} MWh",
        f"  energy unserved      {_fmt(s['energy_unserved_mwh'])} MWh",
        f"  network losses       {_fmt(s['energy_losses_mwh'])} MWh",
        f"  substation import    {_fmt(s['energy_substation_mwh'])} MWh",
        f"  wind used/available  {_fmt(s['wind_used_mwh'])} / {_fmt(s['wind_available_mwh'])} MWh",
        f"  min voltage          {_fmt(s['vm_min_pu'])} pu at bus {s['vm_min_bus']}"
        f" (t = {s['vm_min_time_s'] / 3600:.2f} h)",
        f"  max voltage          {_fmt(s['vm_max_pu'])} pu at bus {s['vm_max_bus']}"
        f" (t = {s['vm_max_time_s'] / 3600:.2f} h)",
        f"  max branch loading   {_fmt(s['loading_max_percent'])} %",
        f"  violations           {s['n_voltage_violations']} bus-steps out of the voltage band, "
        f"{s['n_overloads']} branch-steps overloaded",
        "  costs (CNY)          "
        + ", ".join(
            f"{k.removeprefix('cost_').removesuffix('_cny')} {_fmt(v)}"
            for k, v in s.items()
            if k.startswith("cost_")
        ),
    ]
    if "horizons" in s:
        lines.append(
            f"  optimiser            {s['horizons']} horizons, {s['n_fallbacks']} fallbacks, "
            f"{s['n_admm_not_converged']} ADMM not converged, controller time "
            f"{s['controller_time_s_total']:.1f} s"
        )
    if "admm_gap_pct_median" in s:
        lines.append(
            f"  ADMM vs centralised  gap median {s['admm_gap_pct_median']:.3f} %, max "
            f"{s['admm_gap_pct_max']:.3f} %; outer iterations median "
            f"{s['admm_outer_iterations_median']:.0f}, "
            f"inner {s['admm_inner_iterations_median']:.0f}"
        )
    if "ac_max_dv_pu" in s:
        lines.append(
            f"  AC validation        max |V_opt - V_ac| {s['ac_max_dv_pu']:.4f} pu, loss error "
            f"mean {1e3 * s['ac_loss_error_mw_mean']:.1f} kW "
            f"({s['ac_loss_error_pct_mean']:.1f} %), max |SOC plan - real| "
            f"{s.get('soc_plan_vs_real_max_abs_mwh', float('nan')):.4f} MWh, "
            f"{s['ac_unanticipated_violation_steps']} steps with AC violations "
            "the plan did not expect"
        )
    print("\n".join(lines))


def cmd_run(args: argparse.Namespace) -> int:
    from sim.results import summarise, write_json
    from sim.world import run_scenario

    scenario = load_scenario(args.scenario or default_scenario_path())
    print_warnings(scenario)
    out_dir = Path(args.out or Path("runs") / scenario.name)
    _quiet_mosaik_logs()
    print(
        f"Running {scenario.name!r} ({scenario.n_steps} steps of {scenario.physical_step_s} s, "
        f"seed {scenario.seed}, controller {scenario.controller}) -> {out_dir}"
    )
    try:
        run_scenario(scenario, out_dir, progress=not args.no_progress)
    except KeyboardInterrupt:
        manifest_path = out_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["status"] = "interrupted"
        write_json(manifest_path, manifest)
        print(f"\nInterrupted: {manifest['steps_done']} steps kept in {out_dir}", file=sys.stderr)
        return 130
    print_summary(summarise(out_dir, scenario.physical_step_s), out_dir)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sim.report import write_report

    compare = Path(args.compare) if args.compare else None
    path = write_report(Path(args.run_dir), Path(args.out) if args.out else None, compare=compare)
    print(f"Report written to {path}")
    return 0


def print_warnings(scenario: Scenario) -> int:
    """Print the scenario's warnings (:func:`scenarios.checks.scenario_warnings`) to stderr;
    returns how many."""
    from scenarios.checks import scenario_warnings

    found = scenario_warnings(scenario)
    for warning in found:
        print(f"warning: {warning}", file=sys.stderr)
    return len(found)


def cmd_validate(args: argparse.Namespace) -> int:
    from sim.controller_sim import check_controller

    scenario = load_scenario(args.scenario)
    check_controller(scenario)
    n_warnings = print_warnings(scenario)
    note = f", {n_warnings} warning{'s' * (n_warnings > 1)}" if n_warnings else ""
    print(
        f"{args.scenario}: valid ({scenario.name!r}, {scenario.n_steps} steps, "
        f"{len(scenario.data.microgrids)} microgrids, {len(scenario.faults)} fault events"
        f"{note})"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mgcosim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario (default: the built-in base day)")
    run.add_argument("scenario", nargs="?", help="scenario TOML file")
    run.add_argument("--out", help="run directory (default: runs/<scenario name>)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument("run_dir")
    report.add_argument("--out", help="HTML file (default: RUN_DIR/report.html)")
    report.add_argument("--compare", help="another run directory to compare costs with")
    report.set_defaults(func=cmd_report)
    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario")
    validate.set_defaults(func=cmd_validate)
    from sim.reconfigure import add_parser as add_reconfigure_parser

    add_reconfigure_parser(sub)
    from sim.restore import add_parser as add_restore_parser

    add_restore_parser(sub)
    from sim.coordinate import add_parser as add_coordinate_parser

    add_coordinate_parser(sub)
    from sim.preposition import add_parser as add_preposition_parser

    add_preposition_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
