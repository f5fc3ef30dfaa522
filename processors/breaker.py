"""Circuit breakers, one per provider and model, kept by each worker process.

Closed: jobs run and their outcomes are counted over a sliding window. When at least
``min_calls`` outcomes in the window fail at ``failure_rate`` or more, the breaker opens:
no new attempt starts for that model, jobs wait (they do not fail). After ``open_s``
it half-opens and lets one probe through; the probe's outcome closes it or opens it again.

``CircuitBreaker`` is the pure state machine (time is passed in); ``Breakers`` adds waiting.
``breaker_states()`` is what status pages read, ``breaker_metrics()`` what Prometheus reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.events import BreakerStatus
from sluice.metric_names import BREAKER_STATE_VALUES, MetricName
from sluice.settings import Settings

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    failure_rate: float = 0.5
    min_calls: int = 8
    window_s: float = 30.0
    open_s: float = 10.0

    @classmethod
    def from_settings(cls, s: Settings) -> BreakerConfig:
        return cls(
            s.breaker_failure_rate, s.breaker_min_calls, s.breaker_window_s, s.breaker_open_s
        )


class Pass(StrEnum):
    """What a caller may do now."""

    go = "go"  # closed: run
    probe = "probe"  # half-open: run as the one probe, then report its outcome
    wait = "wait"


@dataclass
class CircuitBreaker:
    config: BreakerConfig
    state: BreakerState = BreakerState.closed
    opened_at: float | None = None
    probing: bool = False

    def __post_init__(self) -> None:
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed)

    def request(self, now: float) -> tuple[Pass, float | None]:
        """Whether an attempt may start now; when waiting, how long at most (None: unknown)."""
        if self.state is BreakerState.open:
            assert self.opened_at is not None
            reopen_at = self.opened_at + self.config.open_s
            if now < reopen_at:
                return Pass.wait, reopen_at - now
            self.state = BreakerState.half_open
        if self.state is BreakerState.half_open:
            if self.probing:
                return Pass.wait, None
            self.probing = True
            return Pass.probe, None
        return Pass.go, None

    def record(self, now: float, failed: bool, probe: bool = False) -> None:
        """The outcome of an attempt admitted with ``go`` (or ``probe``)."""
        if probe:
            self.probing = False
            if failed:
                self._open(now)
            else:
                self.state, self.opened_at = BreakerState.closed, None
                self._outcomes.clear()
            return
        if self.state is not BreakerState.closed:
            return  # started before the breaker opened: already accounted for
        self._outcomes.append((now, failed))
        rate, calls = self.failure_rate(now)
        if calls >= self.config.min_calls and rate >= self.config.failure_rate:
            self._open(now)

    def abandon_probe(self) -> None:
        """The probe never reached the provider (cancelled): let another caller probe."""
        self.probing = False

    def failure_rate(self, now: float) -> tuple[float, int]:
        while self._outcomes and self._outcomes[0][0] < now - self.config.window_s:
            self._outcomes.popleft()
        calls = len(self._outcomes)
        failed = sum(1 for _, f in self._outcomes if f)
        return (failed / calls if calls else 0.0), calls

    def retry_at(self) -> float | None:
        if self.state is BreakerState.open and self.opened_at is not None:
            return self.opened_at + self.config.open_s
        return None

    def _open(self, now: float) -> None:
        self.state, self.opened_at = BreakerState.open, now
        self._outcomes.clear()


@dataclass(frozen=True)
class BreakerKey:
    provider: str
    model: str


class Breakers:
    """Every breaker of this worker, and waiting for one to let an attempt through."""

    def __init__(
        self,
        config: BreakerConfig,
        worker: str = "",
        clock: Callable[[], float] = time.time,
        poll_s: float = 1.0,
    ) -> None:
        self.config = config
        self.worker = worker
        self._clock = clock
        self._poll_s = poll_s
        self._breakers: dict[BreakerKey, CircuitBreaker] = {}
        self._changed: dict[BreakerKey, asyncio.Event] = {}

    def breaker(self, key: BreakerKey) -> CircuitBreaker:
        if key not in self._breakers:
            self._breakers[key] = CircuitBreaker(self.config)
            self._changed[key] = asyncio.Event()
        return self._breakers[key]

    async def admit(self, key: BreakerKey) -> Pass:
        """Wait until the breaker lets an attempt start; ``go`` or ``probe``."""
        breaker = self.breaker(key)
        while True:
            decision, wait_s = breaker.request(self._clock())
            if decision is not Pass.wait:
                return decision
            changed = self._changed[key]
            timeout = self._poll_s if wait_s is None else min(wait_s, self._poll_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    def record(self, key: BreakerKey, admitted: Pass, failed: bool) -> None:
        breaker = self.breaker(key)
        before = breaker.state
        breaker.record(self._clock(), failed, probe=admitted is Pass.probe)
        if breaker.state is not before:
            level = logging.WARNING if breaker.state is BreakerState.open else logging.INFO
            log.log(level, "breaker %s/%s: %s", key.provider, key.model, breaker.state.value)
        self._wake(key)

    def abandon(self, key: BreakerKey, admitted: Pass) -> None:
        if admitted is Pass.probe:
            self.breaker(key).abandon_probe()
            self._wake(key)

    def _wake(self, key: BreakerKey) -> None:
        # Wake every waiter; each asks the breaker again. A fresh event for the next round.
        self._changed[key].set()
        self._changed[key] = asyncio.Event()

    def states(self) -> list[BreakerStatus]:
        now = self._clock()
        out = []
        ordered = sorted(self._breakers.items(), key=lambda kv: (kv[0].provider, kv[0].model))
        for key, breaker in ordered:
            rate, calls = breaker.failure_rate(now)
            state = breaker.state
            if state is BreakerState.open and (breaker.retry_at() or now) <= now:
                state = BreakerState.half_open  # due to probe at the next request
            out.append(
                BreakerStatus(
                    worker=self.worker,
                    provider=key.provider,
                    model=key.model,
                    state=state.value,
                    failure_rate=rate,
                    calls_in_window=calls,
                    opened_at=breaker.opened_at,
                    retry_at=breaker.retry_at(),
                )
            )
        return out


_registry: Breakers | None = None


def install_breakers(breakers: Breakers) -> Breakers:
    """Make ``breakers`` the process's registry, the one ``breaker_states()`` reports."""
    global _registry
    _registry = breakers
    return breakers


def breaker_states() -> list[BreakerStatus]:
    """The state of every breaker in this worker process (empty before the first job)."""
    return _registry.states() if _registry is not None else []


class BreakerCollector(Collector):
    """``sluice_breaker_state{worker, provider, model}``: 0 closed, 1 half-open, 2 open."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            MetricName.breaker_state,
            "circuit breaker state: 0 closed, 1 half-open, 2 open",
            labels=["worker", "provider", "model"],
        )
        for state in breaker_states():
            labels = [state.worker, state.provider, state.model]
            gauge.add_metric(labels, BREAKER_STATE_VALUES[state.state])
        yield gauge


_metrics = CollectorRegistry()
_metrics.register(BreakerCollector())


def breaker_metrics() -> bytes:
    """This worker's breakers in Prometheus text format, read now."""
    return generate_latest(_metrics)


def provider_name(base_url: str | None) -> str:
    """A provider's name for breaker keys: the API host, or OpenAI's when none is configured."""
    if not base_url:
        return "api.openai.com"
    rest = base_url.split("://", 1)[-1]
    return rest.split("/", 1)[0]
