"""Named errors of the optimisation library."""

from __future__ import annotations


class OptimisationError(RuntimeError):
    """A solve that did not return an optimal solution."""

    def __init__(self, what: str, status: str) -> None:
        super().__init__(f"{what}: solver status {status}")
        self.what = what
        self.status = status


class InfeasibleError(OptimisationError):
    """The model has no feasible point (e.g. an impossible PCC limit)."""


class NotConvergedError(RuntimeError):
    """An iterative method (ADMM, an AC power flow) stopped at its iteration limit above its
    thresholds."""


class CommunicationError(RuntimeError):
    """Messages lost or late beyond the fallbacks of :mod:`controllers.comms` (e.g. a
    microgrid's plan missing after every ``finish`` attempt)."""
