"""Run figures from a run directory: the summary, the load accounting check, the AC validation.

:func:`summarise` reads ``steps.csv`` (and ``plans.csv``, ``validation.csv``, ``soc_plan.csv``
when the run has them) and integrates each step over its length into the day figures of
``summary.json``: energies, extremes, costs, the optimiser's plans, ADMM convergence and the
optimiser vs AC power flow comparison (:func:`validation_figures`; the loss error relative to the
AC loss, :func:`relative_loss_error_pct`, is also the report's). It raises
:class:`AccountingError` unless demand = served + unserved + not computed. Wall-clock figures
(:func:`timing_figures`) are machine dependent and go to the manifest only. The files are written
by :class:`sim.results.RunWriter`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mgcosim.sim.schema import DATETIME_COLUMN

BALANCE_REL_TOL = 1e-9  # demand = served + unserved + not computed, relative to the demand


def read_steps(run_dir: Path) -> pd.DataFrame:
    """``steps.csv`` with its label columns kept as text (bus "18", not 18.0)."""
    labels = [
        "vm_min_bus",
        "vm_max_bus",
        "loading_max_branch",
        "active_faults",
        "islands",
        "islands_collapsed",
        "loads_shed_ufls",
    ]
    return pd.read_csv(Path(run_dir) / "steps.csv", dtype=dict.fromkeys(labels, str))


def step_lengths_h(time_s: pd.Series, physical_step_s: int) -> pd.Series:
    """How long each recorded step lasted: until the next row, the last until its regular end."""
    t = time_s.to_numpy()
    last_end = (t[-1] // physical_step_s + 1) * physical_step_s
    ends = list(t[1:]) + [last_end]
    return pd.Series([(e - s) / 3600.0 for s, e in zip(t, ends, strict=True)], index=time_s.index)


def summarise(run_dir: Path, physical_step_s: int) -> dict:
    """Day figures from a run directory (works on an interrupted run too)."""
    steps = read_steps(run_dir)
    dt = step_lengths_h(steps.time_s, physical_step_s)
    worst_v = steps.loc[steps.vm_min_pu.idxmin()] if steps.vm_min_pu.notna().any() else None
    best_v = steps.loc[steps.vm_max_pu.idxmax()] if steps.vm_max_pu.notna().any() else None
    summary = {
        "steps": int(len(steps)),
        "n_not_converged": int((steps.converged == 0).sum()),
        "all_power_flows_converged": bool((steps.converged == 1).all()),
        **load_energies(steps, dt),
        "energy_losses_mwh": float((steps.p_loss_mw * dt).sum()),
        "energy_substation_mwh": float((steps.p_substation_mw * dt).sum()),
        "wind_available_mwh": float((steps.wind_avail_mw * dt).sum()),
        "wind_used_mwh": float((steps.wind_used_mw * dt).sum()),
        "pv_used_mwh": float((steps.pv_used_mw * dt).sum()),
        "vm_min_pu": float(worst_v.vm_min_pu) if worst_v is not None else math.nan,
        "vm_min_bus": str(worst_v.vm_min_bus) if worst_v is not None else "",
        "vm_min_time_s": int(worst_v.time_s) if worst_v is not None else -1,
        "vm_max_pu": float(best_v.vm_max_pu) if best_v is not None else math.nan,
        "vm_max_bus": str(best_v.vm_max_bus) if best_v is not None else "",
        "vm_max_time_s": int(best_v.time_s) if best_v is not None else -1,
        "loading_max_percent": float(steps.loading_max_percent.max()),
        "n_voltage_violations": int(steps.n_v_violations.sum()),
        "n_overloads": int(steps.n_overloads.sum()),
    }
    summary |= tier_energies(steps, dt)
    for rate in [c for c in steps.columns if c.startswith("cost_") and c.endswith("_per_h")]:
        summary[rate.removesuffix("_per_h")] = float((steps[rate] * dt).sum())
    summary |= optimiser_figures(Path(run_dir), physical_step_s)
    return summary


class AccountingError(RuntimeError):
    """Demand != served + unserved + not computed: the records lost energy (a bug)."""


def not_computed_mw(steps: pd.DataFrame) -> pd.Series:
    """Demand of the steps without a converged power flow (older runs lack the column)."""
    if "load_not_computed_mw" in steps:
        return steps.load_not_computed_mw.fillna(0.0)
    return steps.load_demand_mw.where(steps.converged == 0, 0.0)


def load_energies(steps: pd.DataFrame, dt_h: pd.Series) -> dict[str, float]:
    """Demand, served, unserved and not computed energy (MWh); raises
    :class:`AccountingError` unless demand = served + unserved + not computed
    (``BALANCE_REL_TOL`` relative to the demand). Served and unserved are sums over the
    steps whose power flow converged (the others are empty cells, their demand is not
    computed)."""
    converged = steps.converged == 1
    out = {
        "energy_demand_mwh": float((steps.load_demand_mw * dt_h).sum()),
        "energy_served_mwh": float((steps.load_served_mw * dt_h)[converged].sum()),
        "energy_unserved_mwh": float((steps.load_unserved_mw * dt_h)[converged].sum()),
        "energy_not_computed_mwh": float((not_computed_mw(steps) * dt_h).sum()),
    }
    residual = out["energy_demand_mwh"] - sum(
        out[k] for k in ("energy_served_mwh", "energy_unserved_mwh", "energy_not_computed_mwh")
    )
    if abs(residual) > BALANCE_REL_TOL * max(abs(out["energy_demand_mwh"]), 1.0):
        raise AccountingError(
            f"demand {out['energy_demand_mwh']!r} MWh != served + unserved + not computed "
            f"(residual {residual!r} MWh)"
        )
    return out


def tier_energies(steps: pd.DataFrame, dt_h: pd.Series) -> dict[str, float]:
    """Demand, served and shed energy per priority tier (MWh; converged steps for served/shed)."""
    converged = steps.converged == 1
    out = {}
    tiers = sorted(
        c.removeprefix("tier").removesuffix("_demand_mw")
        for c in steps.columns
        if c.startswith("tier") and c.endswith("_demand_mw")
    )
    for t in tiers:
        out[f"energy_demand_tier{t}_mwh"] = float((steps[f"tier{t}_demand_mw"] * dt_h).sum())
        for kind in ("served", "shed"):
            rate = steps[f"tier{t}_{kind}_mw"] * dt_h
            out[f"energy_{kind}_tier{t}_mwh"] = float(rate[converged].sum())
    return out


def optimiser_figures(run_dir: Path, physical_step_s: int) -> dict:
    """Plans, ADMM convergence and AC validation over the run (empty for the baseline)."""
    if not (run_dir / "plans.csv").exists():
        return {}
    plans = pd.read_csv(run_dir / "plans.csv")
    out = {
        "horizons": int(len(plans)),
        "n_fallbacks": int(plans.status.astype(str).str.startswith("fallback").sum()),
        "n_admm_not_converged": int(plans.status.astype(str).str.startswith("admm_not").sum()),
    }
    if "gap_pct" in plans and plans.gap_pct.notna().any():
        out |= {
            "admm_gap_pct_median": float(plans.gap_pct.median()),
            "admm_gap_pct_max": float(plans.gap_pct.max()),
            "admm_outer_iterations_median": float(plans.outer_iterations.median()),
            "admm_inner_iterations_median": float(plans.inner_iterations.median()),
        }
    out |= validation_figures(run_dir)
    return out


def timing_figures(run_dir: Path) -> dict:
    """Wall-clock figures of the plans (``timings.csv``), for the manifest: machine dependent,
    so never in ``summary.json``."""
    if not (run_dir / "timings.csv").exists():
        return {}
    times = pd.read_csv(run_dir / "timings.csv")
    out = {"controller_time_s_total": float(times.wall_time_s.sum())}
    for key in ("admm_time_s", "central_time_s", "restoration_time_s"):
        if times[key].notna().any():
            out[f"{key.removesuffix('_s')}_s_median"] = float(times[key].median())
    return out


def relative_loss_error_pct(val: pd.DataFrame) -> float:
    """Mean loss error relative to the mean AC loss of the same steps (a per-step ratio
    blows up where an islanded step has next to no loss)."""
    both = val.loss_error_mw.notna() & val.p_loss_ac_mw.notna()
    ac_mw = float(val.p_loss_ac_mw[both].sum())
    return 100 * float(val.loss_error_mw[both].sum()) / ac_mw if ac_mw > 0 else math.nan


def validation_figures(run_dir: Path) -> dict:
    """Optimiser vs AC power flow over the run: voltages, losses, SOC, violations."""
    out = {}
    if (run_dir / "validation.csv").exists():
        val = pd.read_csv(run_dir / "validation.csv")
        out |= {
            "ac_max_dv_pu": float(val.max_dv_pu.max()),
            "ac_loss_error_mw_mean": float(val.loss_error_mw.mean()),
            "ac_loss_error_mw_max_abs": float(val.loss_error_mw.abs().max()),
            "ac_loss_error_pct_mean": relative_loss_error_pct(val),
            "ac_unanticipated_violation_steps": int(val.unanticipated_violation.sum()),
        }
        if "plan_ac_max_dv_pu" in val and val.plan_ac_max_dv_pu.notna().any():
            rel = val.plan_ac_loss_error_mw / val.plan_ac_loss_mw
            out |= {
                "plan_ac_max_dv_pu": float(val.plan_ac_max_dv_pu.max()),
                "plan_ac_loss_error_pct_max_abs": float(100 * rel.abs().max()),
            }
        if "plan_ac_v_violations" in val:
            out["plan_ac_violation_steps"] = int((val.plan_ac_v_violations.fillna(0) > 0).sum())
    if (run_dir / "soc_plan.csv").exists():
        out["soc_plan_vs_real_max_abs_mwh"] = soc_plan_error(run_dir)
    return out


def soc_plan_error(run_dir: Path) -> float:
    """Largest |planned - realised| SOC at the end of each plan's first period."""
    plan = pd.read_csv(run_dir / "soc_plan.csv").set_index("time_s")
    real = pd.read_csv(run_dir / "soc_mwh.csv").set_index("time_s")
    plan = plan.drop(columns=DATETIME_COLUMN, errors="ignore")
    period_s = int(np.diff(plan.index).min()) if len(plan) > 1 else 3600
    ends = [t + period_s for t in plan.index if t + period_s in real.index]
    if not ends:
        return math.nan
    diff = (
        real.loc[ends, plan.columns].to_numpy() - plan.loc[[t - period_s for t in ends]].to_numpy()
    )
    return float(np.abs(diff).max())
