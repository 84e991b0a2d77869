"""The messages between the ADMM's DSO coordinator and its microgrid agents.

Every message is a plain JSON-serialisable dict (strings, floats, lists of floats), so the
same exchange runs in one process (:func:`local_exchange`) or through mosaik connections
between processes (:mod:`sim.agent_sim`). Per period lists have one value per horizon
period; ``trade`` dicts are keyed by the neighbour's name (what the sender buys from it).

Coordinator -> microgrid ``g`` (``kind``):

* ``"solve"``: ``first`` (push the horizon's data with a full solve), ``pm_anchor`` and
  ``rho_pm`` (the proximal centre ``z - u_M`` of its PCC exchange and the outer penalty),
  ``trade_anchor`` (per neighbour ``zeta - y``) and ``rho_trade`` (the inner penalty);
* ``"finish"``: keep the last iterate; the agent answers with its plan.

Microgrid -> coordinator, in reply: ``pm`` (its PCC exchange per period), ``trade`` (per
neighbour), ``cost`` (its own cost without penalties, CNY); to ``"finish"``: ``plan``
(:func:`controllers.mg_agent.mg_plan`). A failed solve answers ``error`` (the error class
name), ``what`` and ``status``, raised again on the coordinator's side.

Counting: one message per request and per reply, its size the length of its compact JSON
encoding (what mosaik's protocol carries, without its framing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass

from mgcosim.controllers.errors import InfeasibleError, OptimisationError

Message = dict
Requests = dict[str, Message]  # agent name -> message
Exchange = Generator[Requests, Requests, object]  # yields requests, is sent the replies

ERRORS = {cls.__name__: cls for cls in (OptimisationError, InfeasibleError)}


def encode(msg: Message) -> str:
    return json.dumps(msg, separators=(",", ":"))


@dataclass
class MessageCount:
    messages: int = 0
    bytes: int = 0

    def add(self, batch: Requests) -> None:
        self.messages += len(batch)
        self.bytes += sum(len(encode(m)) for m in batch.values())


def solve_request(
    first: bool,
    pm_anchor: list[float],
    rho_pm: float,
    trade_anchor: dict[str, list[float]],
    rho_trade: float,
) -> Message:
    return {
        "kind": "solve",
        "first": bool(first),
        "pm_anchor": pm_anchor,
        "rho_pm": float(rho_pm),
        "trade_anchor": trade_anchor,
        "rho_trade": float(rho_trade),
    }


def error_reply(err: OptimisationError) -> Message:
    return {"error": type(err).__name__, "what": err.what, "status": err.status}


def raise_if_error(replies: Requests) -> None:
    """Raise a microgrid's failed solve again, as the library's named error."""
    for reply in replies.values():
        if "error" in reply:
            raise ERRORS.get(reply["error"], OptimisationError)(reply["what"], reply["status"])


def relay(msg: Message) -> Message:
    """A message as it arrives after crossing a process boundary (JSON round trip)."""
    return json.loads(encode(msg))


def local_exchange(handlers: dict[str, Callable[[Message], Message]]):
    """Answer a batch of requests in this process, each through a JSON round trip."""

    def respond(requests: Requests) -> Requests:
        return {g: relay(handlers[g](relay(msg))) for g, msg in requests.items()}

    return respond


def drive(exchange: Exchange, respond: Callable[[Requests], Requests]):
    """Run a coordinator exchange to its end; returns its result."""
    try:
        requests = next(exchange)
        while True:
            requests = exchange.send(respond(requests))
    except StopIteration as stop:
        return stop.value
