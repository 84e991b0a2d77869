"""The controller interface: measurements and forecasts in, set-points for the coming steps out.

Every controller (the rule-based baseline here, the optimisers later) implements
:class:`Controller`. The mosaik controller simulator calls :meth:`Controller.plan`
at each controller step and feeds the plan's steps to the grid one by one.

Set-point conventions (see ``networks.params``): ``{MG}_mt`` generation (MW),
``{MG}_ess`` storage power with charging > 0, ``{MG}_wind`` and ``PV_*`` upper caps on
the available renewable power (curtailment), all per plan step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Measurements:
    """State of the grid at ``time_s`` as measured by the grid simulator."""

    time_s: int
    soc_mwh: Mapping[str, float]
    switch_closed: Mapping[int, bool] = field(default_factory=dict)
    mt_p_mw: Mapping[str, float] = field(default_factory=dict)  # last applied turbine output
    active_faults: tuple[dict, ...] = ()  # faults in force (name, kind, branch_ieee, repair_end_s)


@dataclass(frozen=True)
class Forecasts:
    """Forecasts issued at ``time_s`` for the coming horizon, one value per ``step_h``."""

    time_s: int
    step_h: float
    p_mw: Mapping[str, np.ndarray]  # unit -> available wind/PV or load demand
    scenarios_mw: Mapping[str, np.ndarray] = field(default_factory=dict)  # wind unit -> S x n
    scenario_prob: Mapping[str, np.ndarray] = field(default_factory=dict)  # wind unit -> S

    @property
    def n_steps(self) -> int:
        return min(len(v) for v in self.p_mw.values())


@dataclass(frozen=True)
class Plan:
    """Set-points for consecutive steps of ``step_h`` from ``time_s`` on."""

    time_s: int
    step_h: float
    setpoints_mw: Mapping[str, np.ndarray]
    switch_closed: Mapping[int, np.ndarray] | None = (
        None  # IEEE branch -> closed per step; None: keep
    )
    info: Mapping[str, object] = field(default_factory=dict)
    served_fraction: Mapping[str, np.ndarray] | None = None  # load -> share picked up per step
    grid_formers: Sequence[frozenset[str]] | None = None  # microgrids forming islands per step
    setpoints_mvar: Mapping[str, np.ndarray] | None = None  # PV reactive power per step (> 0 out)

    @property
    def n_steps(self) -> int:
        return min(len(v) for v in self.setpoints_mw.values())

    def at(self, k: int) -> dict[str, float]:
        """Set-points of step ``k`` (the last step is held beyond the plan's end)."""
        k = min(k, self.n_steps - 1)
        return {unit: float(values[k]) for unit, values in self.setpoints_mw.items()}

    def q_at(self, k: int) -> dict[str, float] | None:
        """Reactive power set-points of step ``k``, or None (units at their fixed pf)."""
        if self.setpoints_mvar is None:
            return None
        return {u: float(v[min(k, len(v) - 1)]) for u, v in self.setpoints_mvar.items()}

    def served_at(self, k: int) -> dict[str, float] | None:
        """Load pickup commands of step ``k``, or None when the plan sheds nothing."""
        if self.served_fraction is None:
            return None
        return {n: float(v[min(k, len(v) - 1)]) for n, v in self.served_fraction.items()}

    def grid_formers_at(self, k: int) -> list[str] | None:
        """Microgrids meant to form their islands in step ``k`` (None: the grid chooses)."""
        if self.grid_formers is None:
            return None
        return sorted(self.grid_formers[min(k, len(self.grid_formers) - 1)])

    def switches_at(self, k: int) -> dict[int, bool] | None:
        """Switch states of step ``k``, or None when the plan keeps the topology."""
        if self.switch_closed is None:
            return None
        return {b: bool(v[min(k, len(v) - 1)]) for b, v in self.switch_closed.items()}


class Controller(Protocol):
    """Anything that turns measurements and forecasts into a plan."""

    def plan(self, meas: Measurements, fc: Forecasts) -> Plan: ...
