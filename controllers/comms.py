"""Message delay and loss on the links between the ADMM's DSO coordinator and its microgrids.

Scenario table ``[communication]`` (:class:`CommunicationSettings`, validated by
:mod:`scenarios.loader`); without it every message arrives at once (the default, results
unchanged). One link per microgrid (DSO <-> g), both directions, with a loss probability and
a one-way delay; ``[communication.microgrids.MG2]`` overrides a link.

What happens to a message (drawn by :meth:`CommunicationModel.draw`, on the coordinator's
side, in :meth:`controllers.admm.ADMMCoordinator._ask`, so one process and mosaik agents
behave the same):

* each request and each reply is **lost** with probability ``loss_prob``; a lost request is
  not delivered (the microgrid does not solve, so it sends no reply), a lost reply is
  dropped on arrival;
* a delivered message takes ``delay_s + jitter_s * U`` seconds (``U`` uniform in [0, 1));
  the exchanges of a controller step are synchronous, so a reply whose round trip (request
  + reply delay) exceeds ``deadline_s`` is **late**: it misses its exchange and is taken at
  the coordinator's next exchange with that microgrid (one iteration stale), unless that
  exchange's own reply arrives in time; late replies are discarded at the horizon's end.

What the coordinator does about a missing reply (the fallbacks, counted per horizon):

* solve request (``stale``), ``missing_reply = "hold"`` (default): that iteration leaves
  the microgrid's consensus row and duals (``z``, ``u``; the ``zeta``, ``y`` of its P2P
  pairs) as they are, as if it had not taken part; the others are updated;
  ``missing_reply = "last_value"``: the update uses the microgrid's last received PCC
  exchange and trades instead. Measured (``benchmarks/bench_comms.py``, 3 horizons of 6
  periods): "last_value" feeds the duals the same old value again and again and stalls
  (loss 0.2: no horizon converged in 100 outer iterations), "hold" converges (loss 0.2:
  3 of 3, 29 outer iterations on average, 19 without loss).
  Either way the record keeps the last received values (in a warm-started horizon the
  previous horizon's, shifted by one period; in a cold one, before any reply, the consensus
  values and an unknown cost, NaN);
* the ADMM's stopping test is passed only in an iteration whose replies all arrived (stale
  values can look converged);
* a microgrid whose first solve request was lost is sent ``first = true`` again (its
  first solve pushes the horizon's data);
* ``finish``: repeated up to ``finish_attempts`` times to the microgrids without a plan;
  a microgrid that never received a solve request of the horizon, or whose plan is still
  missing, makes the step fail with :class:`controllers.errors.CommunicationError`, and the
  controller applies the rule-based plan for that step (status
  ``fallback_rule_based: communication: ...``, as for a failed solve). The rule-based
  set-points are each microgrid's own (its measurements and forecasts, no message needed).

Only the ADMM's exchanges (``solve`` and ``finish``) are subject to faults; the controller
step's opening (agent mode: each microgrid's forecasts and reactive import) and the
rule-based fallback are not.

Draws: one ``numpy.random.default_rng`` per message pair, seeded from (seed, the horizon's
start time in s, the exchange's number within the horizon, the link's CRC-32 name), four
uniforms: request lost, reply lost, request jitter, reply jitter. The pattern is therefore
the same whatever the order in which links are visited or the processes are laid out, and
the same seed gives the same results; at a higher ``loss_prob`` with the same seed, the
messages lost at a given exchange number include those lost at a lower one (common random
numbers).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

MISSING_REPLY = ("hold", "last_value")  # what a solve iteration does without a reply


@dataclass(frozen=True)
class LinkSettings:
    """One DSO <-> microgrid link: every message, both directions."""

    loss_prob: float = 0.0  # probability that a message is lost, in [0, 1]
    delay_s: float = 0.0  # one-way delay, s
    jitter_s: float = 0.0  # plus uniform in [0, jitter_s) s


@dataclass(frozen=True)
class CommunicationSettings:
    """The ``[communication]`` scenario table (see the module docstring)."""

    seed: int
    default: LinkSettings = LinkSettings()
    links: dict[str, LinkSettings] = field(default_factory=dict)  # per microgrid overrides
    deadline_s: float = 1.0  # an exchange's round trip longer than this is late
    finish_attempts: int = 10  # finish requests per microgrid before the rule-based fallback
    missing_reply: str = "hold"  # or "last_value" (see the module docstring)

    def link(self, name: str) -> LinkSettings:
        return self.links.get(name, self.default)


@dataclass(frozen=True)
class Fate:
    """What happens to one request and its reply on one link."""

    request_lost: bool
    reply_lost: bool
    late: bool  # round trip > deadline (meaningful when neither is lost)
    round_trip_s: float


@dataclass
class CommStats:
    """One horizon's communication figures (the ``comm_*`` columns of ``plans.csv``)."""

    lost: int = 0  # messages lost, both directions
    late: int = 0  # replies later than the deadline
    stale: int = 0  # missing replies replaced by the last received value (or the consensus)
    finish_retries: int = 0  # finish requests repeated

    def record(self) -> dict[str, int]:
        return {f"comm_{k}": v for k, v in vars(self).items()}


class CommunicationModel:
    """Seeded loss and delay of the coordinator's message pairs (one per link and exchange)."""

    def __init__(self, settings: CommunicationSettings) -> None:
        self.settings = settings

    def draw(self, time_s: int, exchange: int, names: list[str]) -> dict[str, Fate]:
        """The fate of exchange ``exchange`` (0, 1, ... within the horizon starting at
        ``time_s``) on the links of ``names``."""
        return {g: self._fate(time_s, exchange, g) for g in names}

    def _fate(self, time_s: int, exchange: int, name: str) -> Fate:
        link = self.settings.link(name)
        key = [self.settings.seed, int(time_s), exchange, zlib.crc32(name.encode())]
        lost_req, lost_rep, jit_req, jit_rep = np.random.default_rng(key).random(4)
        trip = 2 * link.delay_s + link.jitter_s * (jit_req + jit_rep)
        return Fate(
            bool(lost_req < link.loss_prob),
            bool(lost_rep < link.loss_prob),
            bool(trip > self.settings.deadline_s),
            float(trip),
        )
