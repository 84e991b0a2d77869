"""mgcosim: co-simulation of the IEEE 33-bus distribution feeder with three wind-storage
microgrids (mosaik, pandapower AC power flows, controllers solved with HiGHS).

Start with `mgcosim run` (the built-in day), then `mgcosim report runs/<name>`. The other
commands solve one planning problem on its own, without the co-simulation, and print or
write their comparison."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from importlib import metadata
from pathlib import Path

from mgcosim.scenarios.loader import Scenario, ScenarioError, default_scenario_path, load_scenario
from mgcosim.sim.run_state import RunDirError

EXIT_FAILED_POWER_FLOWS = 3  # the run finished, but some power flows did not converge
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): the steps done are kept
EXIT_BAD_INPUT = 2  # refused before anything ran or was written
EXIT_INCOMPLETE = 4  # report written, but the run directory lacks files
RUN_EXIT_CODES = f"""exit codes:
  0    finished, every power flow converged
  1    an unexpected error (traceback; manifest status failed)
  2    bad input, refused with the file, the field and the fix: the scenario,
       or --out (a file, under a file, not writable, a run already there
       without --overwrite); also a ValueError during the run (manifest
       status failed)
  {EXIT_FAILED_POWER_FLOWS}    finished, but some power flows did not converge: their demand is
       counted as "not computed" (summary.json energy_not_computed_mwh,
       manifest status completed_with_failed_power_flows)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): manifest status interrupted, the steps done kept
A killed run (SIGKILL, machine down) leaves manifest status "running"; `mgcosim report`
then says "stopped without finishing" once its process is gone."""


REPORT_EXIT_CODES = f"""exit codes:
  0    report written
  {EXIT_BAD_INPUT}    nothing written: RUN_DIR or --compare missing, a file, or no run
       (manifest.json or steps.csv missing: the missing files are named)
  {EXIT_INCOMPLETE}    report written, but the run directory lacks files (named on stderr)"""


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
        f"  energy not computed  {_fmt(s.get('energy_not_computed_mwh', math.nan))} MWh"
        " (demand of steps whose power flow failed)",
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
    shed = [k for k in s if k.startswith("energy_shed_tier")]
    if shed:
        lines.append(
            "  shed by tier         "
            + ", ".join(
                f"tier {k.removeprefix('energy_shed_tier')[:-4]} {_fmt(s[k])}" for k in shed
            )
            + " MWh"
        )
    if "horizons" in s:
        lines.append(
            f"  optimiser            {s['horizons']} horizons, {s['n_fallbacks']} fallbacks, "
            f"{s['n_admm_not_converged']} ADMM not converged, controller time "
            f"{s.get('controller_time_s_total', math.nan):.1f} s"
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
    if "plan_ac_violation_steps" in s:
        lines.append(
            f"  plan vs its own AC   max |V_opt - V_ac| {s.get('plan_ac_max_dv_pu', math.nan):.6f}"
            f" pu, loss error max {s.get('plan_ac_loss_error_pct_max_abs', math.nan):.3f} %, "
            f"{s['plan_ac_violation_steps']} steps with AC violations"
        )
    if s["n_not_converged"]:
        lines.append(failed_flows_line(s))
    print("\n".join(lines))


def failed_flows_line(summary: dict) -> str:
    """The warning of a run with failed power flows (its figures are incomplete)."""
    return (
        f"  WARNING: {summary['n_not_converged']} of {summary['steps']} power flows did not "
        f"converge; {_fmt(summary.get('energy_not_computed_mwh', math.nan))} MWh of demand "
        f"is not computed (exit code {EXIT_FAILED_POWER_FLOWS})"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from mgcosim.sim.run_state import check_out_dir, mark_manifest, prepare_out_dir

    scenario = load_scenario(args.scenario or default_scenario_path())
    out_dir = Path(args.out or Path("runs") / scenario.name)
    old_files = check_out_dir(out_dir, args.overwrite)
    from mgcosim.sim.controller_sim import check_controller  # pandapower: once --out is good

    check_controller(scenario)
    print_warnings(scenario)
    prepare_out_dir(out_dir, old_files)
    # the simulation's stack: once --out is good
    from mgcosim.sim.results_figures import summarise, timing_figures
    from mgcosim.sim.world import quiet_mosaik_logs, run_scenario

    quiet_mosaik_logs()
    # Ctrl-C (SIGINT) stops the run cleanly even when it was started as a background job,
    # which inherits SIGINT ignored from a non-interactive shell.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(
        f"Running {scenario.name!r} ({scenario.n_steps} steps of {scenario.physical_step_s} s, "
        f"seed {scenario.seed}, controller {scenario.controller}) -> {out_dir}"
    )
    try:
        run_scenario(scenario, out_dir, progress=not args.no_progress)
    except KeyboardInterrupt:
        manifest = mark_manifest(out_dir, "interrupted") or {"steps_done": 0}
        print(f"\nInterrupted: {manifest['steps_done']} steps kept in {out_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        mark_manifest(out_dir, "failed", error=repr(err))
        raise
    summary = summarise(out_dir, scenario.physical_step_s)
    print_summary(summary | timing_figures(out_dir), out_dir)
    return EXIT_FAILED_POWER_FLOWS if summary["n_not_converged"] else 0


def cmd_report(args: argparse.Namespace) -> int:
    from mgcosim.sim.run_state import check_run_files, run_state

    run_dir = Path(args.run_dir)
    missing = check_run_files(run_dir)
    compare = Path(args.compare) if args.compare else None
    if compare is not None:
        check_run_files(compare, "--compare run directory")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise RunDirError(f"--out {out} is a directory; give an HTML file name")
    from mgcosim.sim.report import write_report  # matplotlib: only once the paths are good

    path = write_report(run_dir, out, compare=compare)
    print(f"Run state: {run_state(run_dir).detail}")
    print(f"Report written to {path}")
    if missing:
        print(
            f"error: incomplete run directory {run_dir}: missing {', '.join(missing)} "
            "(the report leaves out what they hold)",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0


def print_warnings(scenario: Scenario) -> int:
    """Print the scenario's warnings (:func:`scenarios.checks.scenario_warnings`) to stderr;
    returns how many."""
    from mgcosim.scenarios.checks import scenario_warnings

    found = scenario_warnings(scenario)
    for warning in found:
        print(f"warning: {warning}", file=sys.stderr)
    return len(found)


def cmd_validate(args: argparse.Namespace) -> int:
    from mgcosim.sim.controller_sim import check_controller

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
    p = argparse.ArgumentParser(
        prog="mgcosim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"mgcosim {metadata.version('mgcosim')}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run a scenario (default: the built-in base day)",
        description="Run a scenario through the co-simulation; results go to the run "
        "directory as the run goes.",
        epilog=RUN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", nargs="?", help="scenario TOML file")
    run.add_argument("--out", help="run directory (default: runs/<scenario name>)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (its files and report.html are removed)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run",
        description="Write the HTML report of a run directory and print the run's state "
        "(finished, interrupted, failed, running, or stopped without finishing: the manifest "
        "says running but its process on this host is gone).",
        epilog=REPORT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("run_dir", help="a run directory (mgcosim run --out)")
    report.add_argument("--out", help="HTML file (default: RUN_DIR/report.html)")
    report.add_argument("--compare", help="another run directory to compare costs with")
    report.set_defaults(func=cmd_report)
    validate = sub.add_parser(
        "validate",
        help="check a scenario file without running it",
        description="Check a scenario file: every field, and the warnings a run would print.",
    )
    validate.add_argument("scenario", help="scenario TOML file")
    validate.set_defaults(func=cmd_validate)
    from mgcosim.sim.reconfigure import add_parser as add_reconfigure_parser

    add_reconfigure_parser(sub)
    from mgcosim.sim.restore_cli import add_parser as add_restore_parser

    add_restore_parser(sub)
    from mgcosim.sim.coordinate import add_parser as add_coordinate_parser

    add_coordinate_parser(sub)
    from mgcosim.sim.preposition import add_parser as add_preposition_parser

    add_preposition_parser(sub)
    from mgcosim.sim.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # a file the command reads or writes: one line, no traceback
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
