"""Storage physics shared by the grid simulator and the controllers (charging > 0)."""

from __future__ import annotations


def energy_change_mwh(ch_mw, dis_mw, eta_ch: float, eta_dis: float, dt_h):
    """Stored energy change over ``dt_h``: eta_ch P_ch dt - P_dis dt / eta_dis.

    The one statement of the storage energy balance: the grid simulator integrates SOC
    with it and every optimisation model writes its SOC dynamics with it (``ch_mw``,
    ``dis_mw`` and ``dt_h`` may be numbers or model expressions)."""
    return eta_ch * ch_mw * dt_h - dis_mw * dt_h / eta_dis


def soc_change_mwh(p_mw: float, eta_ch: float, eta_dis: float, dt_h: float) -> float:
    """:func:`energy_change_mwh` of a signed power (charging > 0)."""
    return energy_change_mwh(max(p_mw, 0.0), max(-p_mw, 0.0), eta_ch, eta_dis, dt_h)


def feasible_power_mw(
    p_mw: float,
    soc_mwh: float,
    e_min_mwh: float,
    e_max_mwh: float,
    p_ch_max_mw: float,
    p_dis_max_mw: float,
    eta_ch: float,
    eta_dis: float,
    dt_h: float,
) -> float:
    """``p_mw`` limited so that power and energy bounds hold over the next ``dt_h``."""
    if p_mw >= 0:
        headroom_mw = max(0.0, (e_max_mwh - soc_mwh) / (eta_ch * dt_h))
        return min(p_mw, p_ch_max_mw, headroom_mw)
    available_mw = max(0.0, (soc_mwh - e_min_mwh) * eta_dis / dt_h)
    return -min(-p_mw, p_dis_max_mw, available_mw)


def unit_feasible_power_mw(mg, p_mw: float, soc_mwh: float, dt_h: float) -> float:
    """:func:`feasible_power_mw` with the limits of microgrid ``mg``'s storage unit."""
    return feasible_power_mw(
        p_mw,
        soc_mwh,
        mg.ess_e_min_mwh,
        mg.ess_e_max_mwh,
        mg.ess_p_ch_max_mw,
        mg.ess_p_dis_max_mw,
        mg.ess_eta_ch,
        mg.ess_eta_dis,
        dt_h,
    )
