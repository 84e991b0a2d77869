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

from mgcosim.networks.params import NetworkData


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
    trades_mw: dict[str, float] | None = None,
) -> dict[str, float]:
    """Cost terms of one step (CNY); NaN exchanges or losses (no power flow) count as NaN.

    A microgrid's grid energy is its measured PCC exchange minus its planned P2P trades
    (``trades_mw["MG1->MG2"]`` > 0: MG1 buys from MG2); it is bought or sold at the tariff.
    P2P payments and wheeling fees are transfers between the agents and do not enter the
    system cost; :func:`transfers` gives them per agent.
    """
    buy = price_at(data.tariff, hour_of_day, "buy_price_cny_per_mwh")
    sell = price_at(data.tariff, hour_of_day, "sell_price_cny_per_mwh")
    p2p = p2p_positions(trades_mw or {})
    mt = ess = grid = 0.0
    for mg in data.microgrids:
        mt += unit_p_mw.get(f"{mg.name}_mt", 0.0) * dt_h * mg.mt_cost_cny_per_mwh
        ess += abs(unit_p_mw.get(f"{mg.name}_ess", 0.0)) * dt_h * mg.ess_deg_cost_cny_per_mwh
        energy = exchange_p_mw.get(mg.name, math.nan) - p2p.get(mg.name, 0.0)
        grid += (
            (max(energy, 0.0) * buy - max(-energy, 0.0) * sell) * dt_h
            if not math.isnan(energy)
            else math.nan
        )
    loss = p_loss_mw * dt_h * data.dso.loss_cost_cny_per_mwh
    return {
        "cost_mt_cny": mt,
        "cost_ess_cny": ess,
        "cost_grid_cny": grid,
        "cost_loss_cny": loss,
        "cost_total_cny": mt + ess + grid + loss,
    }


def p2p_positions(trades_mw: dict[str, float]) -> dict[str, float]:
    """Net P2P purchase (MW) of each microgrid from ``{"A->B": MW A buys from B}``."""
    out: dict[str, float] = {}
    for pair, p in trades_mw.items():
        a, b = pair.split("->")
        out[a] = out.get(a, 0.0) + p
        out[b] = out.get(b, 0.0) - p
    return out


def transfers(trades_mw: dict[str, float], dt_h: float, data: NetworkData) -> dict[str, float]:
    """P2P payments and wheeling fees of one step per agent (CNY, > 0 paid, < 0 received)."""
    price, fee = data.dso.p2p_price_cny_per_mwh, data.dso.wheeling_fee_cny_per_mwh
    out: dict[str, float] = {}
    for pair, p in trades_mw.items():
        a, b = pair.split("->")
        out[a] = out.get(a, 0.0) + (price * p + 0.5 * fee * abs(p)) * dt_h
        out[b] = out.get(b, 0.0) + (-price * p + 0.5 * fee * abs(p)) * dt_h
        out["DSO"] = out.get("DSO", 0.0) - fee * abs(p) * dt_h
    return out


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


def count_outside_bands(
    values: dict[str, float], bands: dict[str, tuple[float, float]], low: float, high: float
) -> int:
    """How many (non-NaN) values lie outside their own band, ``[low, high]`` by default."""
    return sum(
        1
        for k, v in values.items()
        if v is not None and not math.isnan(v) and not _within(v, bands.get(k, (low, high)))
    )


def _within(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]
