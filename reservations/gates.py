"""Hold gates: a held number that waits for a condition another app clears or fails.

Reservations knows no gate by name. An app that makes some holds wait (screening: a contrast CT waits for
the patient's test results to be approved) registers a ``HoldGate`` in its ``AppConfig.ready()``; the hold
service asks every registered gate whether it holds the session's numbers, records the gate on the booking
(``Booking.gate``, ``Booking.gate_status = pending``) and lets the gate open its own records in the hold's
transaction. From then on the gate's app drives the number through reservations' services
(``hold_gate_extend``, ``hold_gate_clear``, ``hold_gate_fail``, ``hold_gate_reopen`` in
``reservations.services.gates``), and the database refuses a booked number whose gate is still pending.

The dependency runs one way: the gate's app imports reservations, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from reservations.models import Booking, Session


@dataclass(frozen=True)
class GatePlan:
    """What a hold on a gated session needs: the gate's name, how long the number waits for the gate's
    first step (never past the slice's booking cut-off), and the gate's own data for ``HoldGate.open``."""

    gate: str
    first_wait: timedelta
    data: Any = field(default=None, compare=False)


class GateForm(Protocol):
    """The questions a gate asks with a hold (a Django form rendered on the hold page)."""

    def is_valid(self) -> bool: ...

    def answers(self) -> dict[str, bool]: ...


class HoldGate(Protocol):
    """A condition that holds some sessions' numbers; each method is called by reservations' services."""

    name: str

    def plan(self, *, session: Session, answers: Mapping[str, object] | None) -> GatePlan | None:
        """The plan for a hold on ``session`` with the patient's ``answers``, or ``None`` when this gate does
        not hold the session's numbers. Raises ``AppError`` for answers that cannot be accepted."""
        ...

    def plan_unanswered(self, *, session: Session) -> GatePlan | None:
        """The plan of a number handed out without asking the patient (a waitlist offer)."""
        ...

    def open(self, *, booking: Booking, plan: GatePlan, now: datetime) -> None:
        """Inside the hold's transaction: create the gate's records for the new held ``booking``."""
        ...

    def lapsed(self, *, booking: Booking) -> None:
        """Inside the expiry's transaction: the pending hold lapsed; tell the patient why."""
        ...

    def payment_block(self, *, booking: Booking) -> str:
        """Why the pending hold cannot be paid for yet, in a sentence for the patient."""
        ...

    def form(self, *, session: Session, data: Mapping[str, Any] | None) -> GateForm | None:
        """The questions to ask with a hold on ``session`` (bound to ``data`` when given), or ``None``."""
        ...

    def next_url(self, *, booking: Booking) -> str:
        """Where the patient goes after holding a number behind this gate (e.g. to send a report)."""
        ...

    def choices(self) -> list[tuple[str, str]]:
        """The conditions a clinic type may name in ``ClinicType.screening_exam`` (code, label)."""
        ...


_GATES: dict[str, HoldGate] = {}


def gate_register(gate: HoldGate) -> None:
    """Register ``gate`` (idempotent: ``ready()`` may run more than once in tests)."""
    _GATES[gate.name] = gate


def gate_get(name: str) -> HoldGate:
    """The registered gate called ``name`` (a booking names only gates that were registered)."""
    return _GATES[name]


def gates_all() -> list[HoldGate]:
    """Every registered gate, in registration order."""
    return list(_GATES.values())
