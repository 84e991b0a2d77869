"""Settings a scenario file produces besides the network data: faults, restoration, MESS, ADMM.

The frozen dataclasses read from the ``[[faults]]``, ``[restoration]``, ``[mess]`` and
``[admm]`` tables (by :mod:`scenarios.read_faults` and :mod:`scenarios.read_tables`) and held by
:class:`scenarios.loader.Scenario`, with the names of the networks a scenario may run on and the
default seed; kept apart from the loader so that the readers can build them without an import
cycle. All are importable from :mod:`scenarios.loader` too.
"""

from __future__ import annotations

from dataclasses import dataclass

from mgcosim.networks.params import DATA_DIR

# network name -> data folder; the feeders with 12 and 48 microgrids: networks/scaled.py
NETWORKS = {
    "ieee33": DATA_DIR,
    "ieee33_mg12": DATA_DIR / "ieee33_mg12",
    "ieee33_mg48": DATA_DIR / "ieee33_mg48",
}
DEFAULT_SEED = 20260601


@dataclass(frozen=True)
class FaultEvent:
    """An outage: a branch (IEEE number) or the main grid, from ``start_s`` for ``repair_s``."""

    name: str
    kind: str
    branch_ieee: int | None
    start_s: int
    repair_s: int


@dataclass(frozen=True)
class RestorationSettings:
    """Restoration mode: its planner, step, horizon margin after the repair, solve limits."""

    method: str = "centralised"  # or "admm" (two-layer sub-network ADMM, centralised fallback)
    step_min: float | None = None  # None: the physical step
    margin_h: float = 1.0
    max_periods: int = 16
    mip_rel_gap: float = 1e-3  # a plan is optimal within this relative gap
    mip_node_limit: int = 100  # else the incumbent after this many nodes (never a clock)
    fine_h: float = 1.0  # hours of restoration steps with integer decisions, then look-ahead
    look_ahead_step_min: float = 60.0  # length of a look-ahead period (linear relaxation)


@dataclass(frozen=True)
class MessSettings:
    """Mobile storage (seed 002) for the scenario's event: how its placement is obtained.

    ``given``: one unit at each of ``buses`` (placed on loading, ``data.mess``);
    ``robust`` / ``deterministic``: computed by :mod:`sim.mess` before the run starts, from
    the scenario's first fault time (two-stage robust C&CG, or the forecast PV only).
    Units, ratings and costs come from ``networks/data/mess.csv``.
    """

    placement: str = "none"
    buses: tuple[int, ...] = ()


@dataclass(frozen=True)
class ADMMOptions:
    """How the bilevel ADMM runs: its agents in the controller's object (``in_process``) or
    as mosaik entities, one per microgrid (``mosaik``), and whether the centralised model is
    solved as a reference (it needs every microgrid's parameters in the DSO's process)."""

    agents: str = "in_process"
    reference: bool = True
