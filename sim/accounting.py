"""Costs and operating figures of one step, from measured (applied) quantities.

Cost terms (CNY), over a step of ``dt_h`` hours:

* turbine fuel: sum of ``P_mt * dt * mt_cost``;
* storage degradation: sum of ``|P_ess| * dt * deg_cost``;
* microgrid grid trade: import at the time-of-use buy price, export at the sell price
  (a negative cost), measured at each PCC;
* DSO network losses: ``P_loss * dt * loss_cost``.
"""

from __future__ import annotations

import math

import pandas as pd

from networks.params import NetworkData


def price_at(tariff: pd.DataFrame, hour_of_day: float, column: str) -> float:
    """Tariff value in force at ``hour_of_day`` (hourly blocks, wrapping at 24 h)."""
    hours = tariff["hour"].to_numpy()
    idx = max(i for i, h in enumerate(hours) if h <= hour_of_day % 24)
    return float(tariff[column].iloc[idx])


def step_costs(
    unit_p_mw: dict[str, float],
    exchange_p_mw: dict[str, float],
    p_loss_mw: float,
    hour_of_day: float,
    dt_h: float,
    data: NetworkData,
) -> dict[str, float]:
    """Cost terms of one step (CNY); NaN exchanges or losses (no power flow) count as NaN."""
    buy = price_at(data.tariff, hour_of_day, "buy_price_cny_per_mwh")
    sell = price_at(data.tariff, hour_of_day, "sell_price_cny_per_mwh")
    mt = ess = grid = 0.0
    for mg in data.microgrids:
        mt += unit_p_mw.get(f"{mg.name}_mt", 0.0) * dt_h * mg.mt_cost_cny_per_mwh
        ess += abs(unit_p_mw.get(f"{mg.name}_ess", 0.0)) * dt_h * mg.ess_deg_cost_cny_per_mwh
        ex = exchange_p_mw.get(mg.name, math.nan)
        grid += (
            (max(ex, 0.0) * buy - max(-ex, 0.0) * sell) * dt_h if not math.isnan(ex) else math.nan
        )
    loss = p_loss_mw * dt_h * data.dso.loss_cost_cny_per_mwh
    return {
        "cost_mt_cny": mt,
        "cost_ess_cny": ess,
        "cost_grid_cny": grid,
        "cost_loss_cny": loss,
        "cost_total_cny": mt + ess + grid + loss,
    }


def extremes(values: dict[str, float], kind: str) -> tuple[float, str]:
    """(value, label) of the min or max of a labelled series, ignoring NaN."""
    clean = {k: v for k, v in values.items() if v is not None and not math.isnan(v)}
    if not clean:
        return math.nan, ""
    label = (min if kind == "min" else max)(clean, key=clean.get)
    return clean[label], label


def count_outside(values: dict[str, float], low: float, high: float) -> int:
    """How many (non-NaN) values lie outside ``[low, high]``."""
    return sum(
        1 for v in values.values() if v is not None and not math.isnan(v) and not low <= v <= high
    )
