"""From a controller's forecasts (physical steps) to one horizon's optimisation inputs."""

from __future__ import annotations

import numpy as np

from mgcosim.controllers.base import Forecasts, Measurements
from mgcosim.controllers.coupled import HorizonInputs
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.microgrid import MicrogridInputs
from mgcosim.networks.ieee33 import q_of
from mgcosim.networks.params import MicrogridParams, NetworkData


def period_means(values: np.ndarray, per_period: int, n_periods: int) -> np.ndarray:
    """Average consecutive blocks of ``per_period`` steps (last axis) into periods."""
    values = np.asarray(values, dtype=float)
    needed = per_period * n_periods
    if values.shape[-1] < needed:
        raise ValueError(f"forecast covers {values.shape[-1]} steps, {needed} needed")
    return values[..., :needed].reshape(*values.shape[:-1], n_periods, per_period).mean(-1)


def tariff_per_period(
    data: NetworkData, first_hour: float, period_h: float, n_periods: int, column: str
) -> np.ndarray:
    """Tariff in force at the start of each period (hourly blocks, wrapping at 24 h)."""
    hours = (first_hour + period_h * np.arange(n_periods)) % 24
    table = data.tariff.sort_values("hour")
    idx = np.searchsorted(table["hour"].to_numpy(), hours, side="right") - 1
    return table[column].to_numpy(dtype=float)[idx]


def microgrid_inputs(
    fc: Forecasts,
    meas: Measurements,
    mg: MicrogridParams,
    buy: np.ndarray,
    sell: np.ndarray,
    per: int,
    n_periods: int,
    mt_plan_mw: np.ndarray,
) -> tuple[MicrogridInputs, np.ndarray]:
    """One microgrid's horizon data from its own forecasts and state, and its reactive
    import per period (load minus turbine, the turbine at its planned output)."""
    wind = fc.scenarios_mw.get(f"{mg.name}_wind")
    prob = fc.scenario_prob.get(f"{mg.name}_wind")
    if wind is None:  # no scenario set: the point forecast as a single scenario
        wind, prob = fc.p_mw[f"{mg.name}_wind"][None, :], np.ones(1)
    load = period_means(fc.p_mw[f"{mg.name}_load"], per, n_periods)
    inputs = MicrogridInputs(
        load_mw=load,
        wind_mw=period_means(wind, per, n_periods),
        prob=np.asarray(prob, dtype=float),
        buy_price=buy,
        sell_price=sell,
        soc_mwh=float(meas.soc_mwh.get(f"{mg.name}_ess", mg.ess_e_init_mwh)),
        mt_prev_mw=float(meas.mt_p_mw.get(f"{mg.name}_mt", 0.0)),
        e_terminal_mwh=mg.ess_e_init_mwh,
    )
    q = np.array([q_of(p, mg.load_pf) for p in load]) - np.array(
        [q_of(p, mg.mt_pf) for p in mt_plan_mw[:n_periods]]
    )
    return inputs, q


def horizon_inputs(
    fc: Forecasts,
    meas: Measurements,
    data: NetworkData,
    dd: DSOData,
    start_hour: float,
    period_h: float,
    n_periods: int,
    topology: list[dict[int, bool]],
    mt_plan_mw: dict[str, np.ndarray] | None = None,
) -> HorizonInputs:
    """Hourly (``period_h``) inputs of the horizon starting at ``fc.time_s``."""
    per = int(round(period_h / fc.step_h))

    def mean(unit: str) -> np.ndarray:
        return period_means(fc.p_mw[unit], per, n_periods)

    first_hour = start_hour + fc.time_s / 3600
    buy = tariff_per_period(data, first_hour, period_h, n_periods, "buy_price_cny_per_mwh")
    sell = tariff_per_period(data, first_hour, period_h, n_periods, "sell_price_cny_per_mwh")
    mgs, mg_q = {}, {}
    for mg in data.microgrids:
        mt = (mt_plan_mw or {}).get(mg.name, np.zeros(n_periods))
        mgs[mg.name], mg_q[mg.name] = microgrid_inputs(fc, meas, mg, buy, sell, per, n_periods, mt)
    return HorizonInputs(
        dt_h=period_h,
        dso_load_mw={bus: mean(f"load_b{bus}") for bus in dd.load_p_nom_mw},
        pv_mw={pv.name: mean(pv.name) for pv in data.pv},
        mg=mgs,
        mg_q_mvar=mg_q,
        topology=topology,
    )
