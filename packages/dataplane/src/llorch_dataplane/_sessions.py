"""Sessions and their budgets: turns, TTL, a bounded LRU, replica affinity and KV warmth (OC-CORE-1140..1149).

A session is metadata only (OC-CORE-1144): counters, times, budget use and the replica that served its
last turn. Prompts and outputs never reach this module. Each admitted task of a session holds a `_Turn`
until its terminal event; the turn points at the session record it was admitted into, so a deleted,
evicted or expired session is never charged for, nor recreated by, its old tasks (OC-CORE-1145).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from msgspec import UNSET

from llorch_adapters import Finished
from llorch_contracts.api import (
    ErrorKind,
    KvHint,
    PoolStatus,
    ReplicaStatus,
    SessionInfo,
    SseMetrics,
    TaskRequest,
)
from llorch_contracts.config import SessionsConfig
from llorch_core import AdmissionError

from ._task import Task


@dataclass(frozen=True, slots=True)
class Affinity:
    """The replica that served a session's last turn, and its restart count then (OC-CORE-1013/1126)."""

    pool_id: str
    replica_id: str
    restarts: int


@dataclass(frozen=True, slots=True)
class Usage:
    """What a task cost when it ended: engine-reported tokens and its running time (dispatch to end)."""

    tokens_in: int
    tokens_out: int
    running_ms: int


@dataclass(eq=False, slots=True)
class _Session:
    session_id: str
    last_active: float
    turns: int = 0
    in_flight: int = 0
    tokens_used: int = 0
    tokens_reserved: int = 0
    time_used_ms: int = 0
    cost_used: float = 0.0
    cost_reserved: float = 0.0
    affinity: Affinity | None = None
    dropped: bool = False


@dataclass(frozen=True, slots=True)
class _Turn:
    session: _Session
    tokens_reserved: int
    cost_reserved: float
    cold: bool


def session_of(request: TaskRequest) -> str | None:
    return request.session_id if isinstance(request.session_id, str) else None


def _invalid(message: str) -> AdmissionError:
    return AdmissionError(ErrorKind.INVALID_PARAMS, message)


class SessionStore:
    """Live sessions keyed by id, least recently active first; `clock()` is monotonic seconds."""

    def __init__(self, config: SessionsConfig, *, clock: Callable[[], float]) -> None:
        self.config = config
        self.budgets = config.budgets
        self.clock = clock
        self.ttl_s = config.ttl_ms / 1000
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._turns: dict[str, _Turn] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    # ------------------------------------------------------------------ admission

    def check(self, request: TaskRequest, now: float) -> None:
        """Refuse what the session cannot take: turns, budgets (INVALID_PARAMS), then room (ADMISSION_REJECT).

        Changes nothing a caller could observe (expired sessions may be forgotten), so admission can run
        its later checks and call `admit` with the same `now` once the task is really enqueued.
        """
        session_id = session_of(request)
        if session_id is None:
            return
        session = self._live(session_id, now) or _Session(session_id, now)
        if session.turns >= self.config.max_turns:
            raise _invalid(
                f"session_id: session {session_id!r} has used all {self.config.max_turns} turns "
                "(sessions.max_turns)"
            )
        self._check_budgets(session, request.max_tokens)
        if session_id not in self._sessions:
            self._room(now)

    def _check_budgets(self, session: _Session, max_tokens: int) -> None:
        """OC-CORE-1023: the task's reservation must fit what remains of each configured budget."""
        tokens, time_ms, cost = self._remaining(session)
        if tokens is not None and max_tokens > tokens:
            raise _invalid(
                f"max_tokens: session {session.session_id!r} token budget (sessions.budgets.tokens) is "
                f"exhausted: {max_tokens} tokens do not fit the {tokens} remaining"
            )
        if time_ms is not None and time_ms <= 0:
            raise _invalid(
                f"session_id: session {session.session_id!r} time budget (sessions.budgets.time_ms) "
                "is exhausted"
            )
        reservation = max_tokens * self.budgets.cost_per_output_token
        if cost is not None and reservation > cost + 1e-12:
            raise _invalid(
                f"max_tokens: session {session.session_id!r} cost budget (sessions.budgets.cost) is "
                f"exhausted: {max_tokens} tokens may cost {reservation:g}, {cost:g} remains"
            )

    def _room(self, now: float) -> str | None:
        """Room for one more session: None when there is, else the idle session to evict (OC-CORE-1143)."""
        self._expire(now)
        if len(self._sessions) < self.config.max_sessions:
            return None
        victim = next((s.session_id for s in self._sessions.values() if s.in_flight == 0), None)
        if victim is None:
            raise AdmissionError(
                ErrorKind.ADMISSION_REJECT,
                f"all {self.config.max_sessions} sessions (sessions.max_sessions) have tasks in flight",
            )
        return victim

    def admit(self, request: TaskRequest, task_id: str, now: float) -> None:
        """Count the task as a turn of its session, creating it if needed (OC-CORE-1140/1142).

        Call only after `check(request, now)` passed, with the same `now` and no await in between.
        """
        session_id = session_of(request)
        if session_id is None:
            return
        self.check(request, now)
        session = self._live(session_id, now)
        if session is None:
            if (victim := self._room(now)) is not None:
                self._forget(victim)
            session = self._sessions[session_id] = _Session(session_id, now)
        cost = request.max_tokens * self.budgets.cost_per_output_token
        session.turns += 1
        session.in_flight += 1
        session.tokens_reserved += request.max_tokens
        session.cost_reserved += cost
        self._touch(session, now)
        cold = request.kv_hint is not UNSET and request.kv_hint == KvHint.cold
        self._turns[task_id] = _Turn(session, request.max_tokens, cost, cold)

    # ------------------------------------------------------------------ dispatch and end

    def preferred_replica(self, task_id: str, pool: PoolStatus) -> str | None:
        """The replica of the session's last turn while it has not restarted since (OC-CORE-1013)."""
        turn = self._turns.get(task_id)
        affinity = None if turn is None or turn.cold else turn.session.affinity
        if affinity is None or affinity.pool_id != pool.pool_id:
            return None
        replica = next((r for r in pool.replicas if r.replica_id == affinity.replica_id), None)
        return affinity.replica_id if replica is not None and replica.restarts == affinity.restarts else None

    def dispatched(self, task_id: str, pool_id: str, replica: ReplicaStatus) -> bool:
        """Record where the turn runs; return its `kv_warmth` (OC-CORE-1126)."""
        turn = self._turns.get(task_id)
        if turn is None or turn.session.dropped:
            return False
        here = Affinity(pool_id, replica.replica_id, replica.restarts)
        warm = not turn.cold and turn.session.affinity == here
        turn.session.affinity = here
        return warm

    def time_remaining_s(self, task_id: str) -> float | None:
        """The time budget left for a task about to run, None when unlimited (OC-CORE-1147)."""
        turn = self._turns.get(task_id)
        if turn is None or turn.session.dropped:
            return None
        time_ms = self._remaining(turn.session)[1]
        return None if time_ms is None else time_ms / 1000

    def ended(self, task_id: str, usage: Usage) -> None:
        """Charge what the task used and release its reservation (OC-CORE-1146..1149)."""
        turn = self._turns.pop(task_id, None)
        if turn is None:
            return
        session = turn.session
        session.in_flight -= 1
        session.tokens_reserved -= turn.tokens_reserved
        session.cost_reserved = 0.0 if session.in_flight == 0 else session.cost_reserved - turn.cost_reserved
        session.tokens_used += usage.tokens_in + usage.tokens_out
        session.time_used_ms += usage.running_ms
        session.cost_used += usage.tokens_out * self.budgets.cost_per_output_token
        if not session.dropped:
            self._touch(session, self.clock())

    # ------------------------------------------------------------------ reading and deleting

    def with_budgets(self, task_id: str, metrics: SseMetrics) -> SseMetrics:
        """`metrics` plus the session's remaining budgets; unlimited ones are left out (OC-CORE-1024)."""
        turn = self._turns.get(task_id)
        if turn is None or turn.session.dropped:
            return metrics
        tokens, time_ms, cost = self._remaining(turn.session)
        return msgspec.structs.replace(
            metrics,
            tokens_budget_remaining=UNSET if tokens is None else tokens,
            time_budget_remaining_ms=UNSET if time_ms is None else time_ms,
            cost_budget_remaining=UNSET if cost is None else cost,
        )

    def info(
        self, session_id: str, replica_of: Callable[[str, str], ReplicaStatus | None]
    ) -> SessionInfo | None:
        """The session as the API reports it, None when unknown or expired; never creates one (OC-CORE-1140).

        `replica_of(pool_id, replica_id)` is the replica as the pool view now reports it.
        """
        now = self.clock()
        session = self._live(session_id, now)
        if session is None:
            return None
        tokens, time_ms, cost = self._remaining(session)
        affinity = session.affinity
        replica = None if affinity is None else replica_of(affinity.pool_id, affinity.replica_id)
        warm = affinity is not None and replica is not None and replica.restarts == affinity.restarts
        idle_ms = 0.0 if session.in_flight else (now - session.last_active) * 1000
        return SessionInfo(
            session_id=session_id,
            ttl_ms_remaining=max(0, int(self.config.ttl_ms - idle_ms)),
            turns=session.turns,
            kv_bytes=0,
            kv_warmth=warm,
            tokens_budget_remaining=tokens,
            time_budget_remaining_ms=time_ms,
            cost_budget_remaining=cost,
        )

    def delete(self, session_id: str) -> bool:
        """Forget a live session's affinity, warmth and budgets; its tasks keep running (OC-CORE-1145)."""
        if self._live(session_id, self.clock()) is None:
            return False
        self._forget(session_id)
        return True

    # ------------------------------------------------------------------ internals

    def _remaining(self, session: _Session) -> tuple[int | None, int | None, float | None]:
        """What each configured budget still allows after charges and reservations; None = unlimited."""
        b = self.budgets
        tokens = None if not b.tokens else max(0, b.tokens - session.tokens_used - session.tokens_reserved)
        time_ms = None if not b.time_ms else max(0, b.time_ms - session.time_used_ms)
        cost = None if not b.cost else max(0.0, b.cost - session.cost_used - session.cost_reserved)
        return tokens, time_ms, cost

    def _expired(self, session: _Session, now: float) -> bool:
        # A turn in flight is ongoing activity: the TTL runs from its terminal event (OC-CORE-1141).
        return session.in_flight == 0 and now - session.last_active >= self.ttl_s

    def _live(self, session_id: str, now: float) -> _Session | None:
        session = self._sessions.get(session_id)
        if session is not None and self._expired(session, now):
            self._forget(session_id)
            return None
        return session

    def _expire(self, now: float) -> None:
        expired = [s.session_id for s in self._sessions.values() if self._expired(s, now)]
        for session_id in expired:
            self._forget(session_id)

    def _touch(self, session: _Session, now: float) -> None:
        session.last_active = now
        self._sessions.move_to_end(session.session_id)

    def _forget(self, session_id: str) -> None:
        session = self._sessions.pop(session_id)
        session.dropped = True
        session.affinity = None


def usage_of(task: Task, finished: Finished | None) -> Usage:
    """What the engine processed for an ended task (OC-CORE-1146/1149).

    A completed task has the engine's own counts. A canceled or failed one is charged the tokens it
    streamed, plus its prompt only when the engine reported the prompt's size.
    """
    running_ms = 0
    if task.started_ms is not None and task.ended_ms is not None:
        running_ms = max(0, task.ended_ms - task.started_ms)
    if finished is not None:
        return Usage(finished.tokens_in, finished.tokens_out, running_ms)
    return Usage(task.tokens_in, task.events.tokens, running_ms)
