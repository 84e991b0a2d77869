"""What the tie-line projection (seed 003) takes and gives: window conditions, polygon, offer.

In: :class:`MicrogridConditions`, what a microgrid faces in the restoration window (from
profile values by :func:`window_conditions`), and :func:`unit_p_max_mw`, each unit's active
power ceiling in it. Out: :class:`TieLineHull`, the convex polygon of feasible tie-line points
(P, Q), and :class:`VirtualNodeOffer`, everything a microgrid shares with the DSO, with its
preference coefficients checked by :func:`check_preference`. Plain data and geometry, no
model: the model is :mod:`controllers.projection_model`, the search :mod:`controllers.projection`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork


class PreferenceError(ValueError):
    """Preference coefficients that are not one number >= 1 per tier."""


@dataclass(frozen=True)
class MicrogridConditions:
    """What a microgrid faces in the restoration window (one period at constant power)."""

    window_h: float
    load_pu: float  # scale on every internal peak load
    wind_avail_mw: dict[str, float]  # per wind unit
    soc_mwh: float  # storage energy at the window start (the microgrid's total)


def window_conditions(
    net: MicrogridNetwork,
    *,
    window_h: float,
    load_pu: float = 1.0,
    wind_pu: float = 0.5,
    soc_mwh: float | None = None,
) -> MicrogridConditions:
    """Conditions from profile values (wind as a share of each unit's rating)."""
    if not window_h > 0 or load_pu < 0 or wind_pu < 0:
        raise ValueError(
            f"window_h {window_h}, load_pu {load_pu}, wind_pu {wind_pu}: "
            "need window_h > 0 and non-negative profile values"
        )
    return MicrogridConditions(
        window_h=window_h,
        load_pu=load_pu,
        wind_avail_mw={u.name: u.p_max_mw * wind_pu for u in net.units_of("wind")},
        soc_mwh=net.params.ess_e_init_mwh if soc_mwh is None else soc_mwh,
    )


def unit_p_max_mw(net: MicrogridNetwork, cond: MicrogridConditions) -> dict[str, float]:
    """Active-power ceiling of each unit in the window (storage: power and energy)."""
    p = net.params
    ess_total = sum(u.p_max_mw for u in net.units_of("ess"))
    energy_mw = max(0.0, cond.soc_mwh - p.ess_e_min_mwh) * p.ess_eta_dis / cond.window_h
    out = {}
    for u in net.units:
        if u.kind == "mt":
            out[u.name] = u.p_max_mw
        elif u.kind == "wind":
            out[u.name] = min(u.p_max_mw, cond.wind_avail_mw.get(u.name, 0.0))
        else:
            share = u.p_max_mw / ess_total if ess_total > 0 else 0.0
            out[u.name] = min(u.p_max_mw, energy_mw * share)
    return out


# --- the polygon ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TieLineHull:
    """Convex polygon in the tie-line (P, Q) plane: vertices counter-clockwise, facets a.x <= b."""

    vertices: tuple[tuple[float, float], ...]  # (P MW, Q Mvar), import > 0
    normals: tuple[tuple[float, float], ...]  # unit outward normal of the edge from vertex i
    offsets: tuple[float, ...]
    threshold_mw: float
    n_solves: int = 0
    time_s: float = 0.0

    @classmethod
    def from_vertices(cls, vertices, threshold_mw: float, **stats) -> TieLineHull:
        pts = [tuple(map(float, v)) for v in vertices]
        normals, offsets = [], []
        for a, b in zip(pts, pts[1:] + pts[:1], strict=True):
            dx, dy = b[0] - a[0], b[1] - a[1]
            length = math.hypot(dx, dy)
            n = (dy / length, -dx / length)
            normals.append(n)
            offsets.append(n[0] * a[0] + n[1] * a[1])
        return cls(tuple(pts), tuple(normals), tuple(offsets), threshold_mw, **stats)

    @property
    def area_mw_mvar(self) -> float:
        x, y = np.asarray(self.vertices).T
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    def contains(self, p_mw: float, q_mvar: float, tol_mw: float = 1e-9) -> bool:
        return all(
            a * p_mw + c * q_mvar <= b + tol_mw
            for (a, c), b in zip(self.normals, self.offsets, strict=True)
        )

    def box(self) -> tuple[float, float, float, float]:
        """(P min, P max, Q min, Q max) of the polygon."""
        (p0, q0), (p1, q1) = np.min(self.vertices, axis=0), np.max(self.vertices, axis=0)
        return float(p0), float(p1), float(q0), float(q1)


# --- what the microgrid shares: the virtual node ---------------------------------------------
@dataclass(frozen=True)
class VirtualNodeOffer:
    """Everything a microgrid shares with the DSO (no internal bus, line or unit data).

    The tie-line polygon, 1-D projections of the aggregated internal sources and of the
    served load of each tier (the seed's "overall information of sources and the three load
    tiers"), the load power factor, whether it can form an island's voltage, the PCC voltage
    band it needs, and its preference coefficients theta_j >= 1 (how much it prefers serving
    its own tier-j load from its own sources over a tier-j load outside).
    """

    name: str
    bus_ieee: int
    hull: TieLineHull
    source_p_mw: tuple[float, float]
    source_q_mvar: tuple[float, float]
    tier_max_mw: dict[int, float]
    load_q_per_p: float
    grid_forming: bool
    pcc_v_band_pu: tuple[float, float]
    preference: dict[int, float]

    def with_preference(self, preference: dict[int, float]) -> VirtualNodeOffer:
        check_preference(preference)
        return replace(self, preference=dict(preference))


def check_preference(preference: dict[int, float]) -> None:
    if set(preference) != set(TIERS):
        raise PreferenceError(
            f"preference: give one coefficient per tier {TIERS}, got {preference}"
        )
    if bad := {t: v for t, v in preference.items() if not v >= 1}:
        raise PreferenceError(
            f"preference {bad}: coefficients must be >= 1 (1 = no preference for own loads)"
        )
