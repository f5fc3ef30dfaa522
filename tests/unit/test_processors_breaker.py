"""Circuit breaker per provider and model: opens on a failure rate, half-opens with one probe."""

from __future__ import annotations

import asyncio

from processors.breaker import (
    BreakerConfig,
    BreakerKey,
    Breakers,
    BreakerState,
    CircuitBreaker,
    Pass,
    breaker_metrics,
    install_breakers,
    provider_name,
)

CONFIG = BreakerConfig(failure_rate=0.5, min_calls=4, window_s=10.0, open_s=5.0)


def opened(now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(CONFIG)
    for _ in range(4):
        breaker.record(now, failed=True)
    return breaker


def test_it_stays_closed_below_the_rate_or_with_too_few_calls() -> None:
    breaker = CircuitBreaker(CONFIG)
    for failed in (True, True, True):
        breaker.record(0.0, failed)
    assert breaker.state is BreakerState.closed  # 3 calls < min_calls
    breaker = CircuitBreaker(CONFIG)
    for failed in (True, False, False, False, True, False):
        breaker.record(0.0, failed)
    assert breaker.state is BreakerState.closed  # 2 of 6
    assert breaker.request(0.0) == (Pass.go, None)


def test_it_opens_at_the_failure_rate_and_new_attempts_wait() -> None:
    breaker = opened(now=100.0)
    assert breaker.state is BreakerState.open
    decision, wait_s = breaker.request(101.0)
    assert decision is Pass.wait and wait_s == 4.0


def test_old_outcomes_leave_the_window() -> None:
    breaker = CircuitBreaker(CONFIG)
    for _ in range(3):
        breaker.record(0.0, failed=True)
    breaker.record(20.0, failed=True)  # the first three are 20 s old
    assert breaker.state is BreakerState.closed
    assert breaker.failure_rate(20.0) == (1.0, 1)


def test_after_open_s_one_probe_goes_and_the_rest_wait_for_its_outcome() -> None:
    breaker = opened()
    assert breaker.request(5.0) == (Pass.probe, None)
    assert breaker.state is BreakerState.half_open
    assert breaker.request(5.1) == (Pass.wait, None)
    breaker.record(6.0, failed=False, probe=True)
    assert breaker.state is BreakerState.closed
    assert breaker.request(6.0) == (Pass.go, None)


def test_a_failed_probe_opens_it_again() -> None:
    breaker = opened()
    assert breaker.request(5.0)[0] is Pass.probe
    breaker.record(6.0, failed=True, probe=True)
    assert breaker.state is BreakerState.open and breaker.retry_at() == 11.0


def test_an_abandoned_probe_lets_another_caller_probe() -> None:
    breaker = opened()
    assert breaker.request(5.0)[0] is Pass.probe
    breaker.abandon_probe()
    assert breaker.request(5.0)[0] is Pass.probe


def test_outcomes_of_attempts_started_before_it_opened_do_not_count() -> None:
    breaker = opened()
    breaker.record(1.0, failed=False)  # a late success must not close it
    assert breaker.state is BreakerState.open


async def test_a_waiting_job_starts_once_the_probe_succeeds() -> None:
    breakers = Breakers(BreakerConfig(0.5, 2, 10.0, open_s=0.05), worker="w", poll_s=0.01)
    key = BreakerKey("llm.example", "m")
    for _ in range(2):
        breakers.record(key, await breakers.admit(key), failed=True)
    assert [s.state for s in breakers.states()] == ["open"]
    probe = await asyncio.wait_for(breakers.admit(key), 1.0)
    assert probe is Pass.probe
    waiter = asyncio.create_task(breakers.admit(key))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # the probe's outcome is not known yet
    breakers.record(key, probe, failed=False)
    assert await asyncio.wait_for(waiter, 1.0) is Pass.go
    (status,) = breakers.states()
    assert (status.provider, status.model, status.state, status.worker) == (
        "llm.example",
        "m",
        "closed",
        "w",
    )


def test_breakers_are_per_provider_and_model() -> None:
    breakers = Breakers(CONFIG)
    a, b = BreakerKey("p", "m1"), BreakerKey("p", "m2")
    for _ in range(4):
        breakers.record(a, Pass.go, failed=True)
    assert breakers.breaker(a).state is BreakerState.open
    assert breakers.breaker(b).state is BreakerState.closed


def test_provider_names_come_from_the_base_url() -> None:
    assert provider_name(None) == "api.openai.com"
    assert provider_name("http://127.0.0.1:8089/v1") == "127.0.0.1:8089"


def test_prometheus_sees_each_breaker_state() -> None:
    breakers = install_breakers(Breakers(CONFIG, worker="w1"))
    for _ in range(4):
        breakers.record(BreakerKey("p", "m-open"), Pass.go, failed=True)
    breakers.breaker(BreakerKey("p", "m-fine"))
    text = breaker_metrics().decode()
    assert 'sluice_breaker_state{model="m-open",provider="p",worker="w1"} 2.0' in text
    assert 'sluice_breaker_state{model="m-fine",provider="p",worker="w1"} 0.0' in text
