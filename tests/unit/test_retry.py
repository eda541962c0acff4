"""The retry policy: which failures are retried for reads and writes, waits, and when to stop."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from notionfs.config import Settings
from notionfs.retry import RetryPolicy, retry_after_s, retryable_error, retryable_status

WALL = 1_700_000_000.0  # the wall clock the tests run at (epoch seconds)


class FakeTime:
    """A monotonic clock that moves only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Jitter(random.Random):
    """A random source whose ``uniform`` always answers the same point of the interval."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def policy(
    fake: FakeTime | None = None,
    *,
    max_retries: int = 5,
    base_s: float = 1.0,
    cap_s: float = 8.0,
    deadline_s: float | None = 30.0,
    jitter: float = 1.0,
) -> RetryPolicy:
    fake = fake or FakeTime()
    return RetryPolicy(
        max_retries=max_retries,
        backoff_base_s=base_s,
        backoff_cap_s=cap_s,
        deadline_s=deadline_s,
        clock=fake.clock,
        sleep=fake.sleep,
        wall_clock=lambda: WALL,
        rng=Jitter(jitter),
    )


def http_date(epoch_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch_s, tz=UTC), usegmt=True)


# ---- what is retried ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "for_reads", "for_writes"),
    [
        (429, True, True),  # rate limited: refused before anything was done
        (529, True, True),  # Notion's service_overload: likewise
        (500, True, False),  # may have been applied: reads only
        (502, True, False),
        (503, True, False),
        (504, True, False),
        (501, False, False),  # not implemented: trying again cannot help
        (400, False, False),
        (401, False, False),
        (403, False, False),
        (404, False, False),
        (409, False, False),
    ],
)
def test_statuses_retried_for_reads_and_for_writes(
    status: int, for_reads: bool, for_writes: bool
) -> None:
    assert retryable_status(status, read=True) is for_reads
    assert retryable_status(status, read=False) is for_writes


def _error(kind: type[Exception]) -> Exception:
    return kind("simulated", request=httpx.Request("GET", "https://x.test/"))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kind", "for_reads", "for_writes"),
    [
        (httpx.ConnectError, True, True),  # nothing was sent
        (httpx.ConnectTimeout, True, True),
        (httpx.PoolTimeout, True, True),
        (httpx.ReadTimeout, True, False),  # sent; the answer was lost
        (httpx.WriteTimeout, True, False),
        (httpx.ReadError, True, False),
        (httpx.WriteError, True, False),
        (httpx.RemoteProtocolError, True, False),
        (httpx.UnsupportedProtocol, False, False),  # a mistake of ours: again is the same
        (httpx.LocalProtocolError, False, False),
    ],
)
def test_transport_errors_retried_for_reads_and_for_writes(
    kind: type[Exception], for_reads: bool, for_writes: bool
) -> None:
    assert retryable_error(_error(kind), read=True) is for_reads
    assert retryable_error(_error(kind), read=False) is for_writes


def test_errors_that_are_not_httpx_errors_are_never_retried() -> None:
    assert not retryable_error(ValueError("bug"), read=True)
    assert policy().delay_for_error(ValueError("bug"), 0, read=True) is None


# ---- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7.0), ("0", 0.0), ("1.5", 1.5), ("-3", None), ("soon", None)]
)
def test_retry_after_in_seconds(value: str, expected: float | None) -> None:
    assert retry_after_s({"retry-after": value}, WALL) == expected


def test_retry_after_absent_is_none() -> None:
    assert retry_after_s({}, WALL) is None


def test_retry_after_date_is_measured_against_the_servers_date() -> None:
    server_now = WALL - 3600.0  # the server's clock is an hour behind ours
    headers = {"retry-after": http_date(server_now + 12), "date": http_date(server_now)}
    assert retry_after_s(headers, WALL) == pytest.approx(12.0)


def test_retry_after_date_without_a_date_header_uses_the_wall_clock() -> None:
    assert retry_after_s({"retry-after": http_date(WALL + 4)}, WALL) == pytest.approx(4.0)
    assert retry_after_s({"retry-after": http_date(WALL - 60)}, WALL) == 0.0  # already past


def test_retry_after_with_a_broken_date_header_uses_the_wall_clock() -> None:
    headers = {"retry-after": http_date(WALL + 5), "date": "yesterday-ish"}
    assert retry_after_s(headers, WALL) == pytest.approx(5.0)


def test_policy_reads_retry_after_with_its_own_wall_clock() -> None:
    target = datetime.fromtimestamp(WALL, tz=UTC) + timedelta(seconds=9)
    headers = httpx.Headers({"Retry-After": format_datetime(target, usegmt=True)})
    assert policy().retry_after_s(headers) == pytest.approx(9.0)


# ---- how long to wait -----------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    top = policy(base_s=0.5, cap_s=4.0, jitter=1.0)
    assert [top.backoff_s(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_keeps_at_least_half_the_wait() -> None:
    low = policy(base_s=0.5, cap_s=4.0, jitter=0.0)
    assert [low.backoff_s(n) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_real_jitter_spreads_waits_within_bounds() -> None:
    spread = RetryPolicy(
        max_retries=3, backoff_base_s=1.0, backoff_cap_s=8.0, deadline_s=None,
        rng=random.Random(7),
    )
    waits = [spread.backoff_s(2) for _ in range(50)]
    assert all(2.0 <= wait <= 4.0 for wait in waits)
    assert len(set(waits)) > 40  # retries of clients that failed together do not align


def test_delay_for_a_status_prefers_retry_after_over_backoff() -> None:
    rules = policy(jitter=1.0)
    assert rules.delay_for_status(429, {"retry-after": "7"}, 0, read=True) == 7.0
    assert rules.delay_for_status(503, {"retry-after": "3"}, 0, read=True) == 3.0
    assert rules.delay_for_status(429, {}, 2, read=False) == 4.0  # backoff: 1 * 2**2
    assert rules.delay_for_status(529, {}, 0, read=False) == 1.0


def test_no_delay_for_a_final_status_even_with_retry_after() -> None:
    rules = policy()
    assert rules.delay_for_status(503, {"retry-after": "1"}, 0, read=False) is None
    assert rules.delay_for_status(400, {"retry-after": "1"}, 0, read=True) is None


def test_delay_for_a_transport_error_is_the_backoff() -> None:
    rules = policy(jitter=1.0)
    assert rules.delay_for_error(_error(httpx.ReadTimeout), 1, read=True) == 2.0
    assert rules.delay_for_error(_error(httpx.ReadTimeout), 1, read=False) is None
    assert rules.delay_for_error(_error(httpx.ConnectError), 1, read=False) == 2.0


# ---- when to stop ---------------------------------------------------------------------------


def test_retries_are_counted() -> None:
    rules = policy(max_retries=2, deadline_s=None)
    assert rules.allows(0.0, 0, started=0.0)
    assert rules.allows(0.0, 1, started=0.0)
    assert not rules.allows(0.0, 2, started=0.0)


def test_a_wait_past_the_deadline_is_not_waited() -> None:
    fake = FakeTime()
    rules = policy(fake, deadline_s=10.0)
    started = rules.now()
    assert rules.allows(10.0, 0, started)
    assert not rules.allows(10.5, 0, started)
    fake.now += 6.0  # the call has run 6 s already
    assert rules.allows(4.0, 1, started)
    assert not rules.allows(4.5, 1, started)


def test_without_a_deadline_only_the_count_stops() -> None:
    rules = policy(max_retries=1, deadline_s=None)
    assert rules.allows(1e9, 0, started=0.0)
    assert not rules.allows(0.0, 1, started=0.0)


def test_sleep_and_clock_are_the_injected_ones() -> None:
    fake = FakeTime()
    rules = policy(fake)
    rules.sleep(2.5)
    assert fake.sleeps == [2.5]
    assert rules.now() == 52.5


def test_a_call_loop_over_the_policy_stays_within_its_deadline() -> None:
    """How callers use it: retry while allowed, sleeping the delay each time."""
    fake = FakeTime()
    rules = policy(fake, max_retries=100, base_s=1.0, cap_s=4.0, deadline_s=20.0)
    started, attempt = rules.now(), 0
    while True:
        delay_s = rules.delay_for_status(503, {}, attempt, read=True)
        assert delay_s is not None
        if not rules.allows(delay_s, attempt, started):
            break
        rules.sleep(delay_s)
        attempt += 1
    assert fake.sleeps[:3] == [1.0, 2.0, 4.0]
    assert sum(fake.sleeps) <= 20.0
    assert attempt == len(fake.sleeps) < 100


def test_from_settings_takes_the_mounts_numbers() -> None:
    settings = Settings(max_retries=4, backoff_base_s=0.25, backoff_cap_s=3.0, op_deadline_s=9.0)
    rules = RetryPolicy.from_settings(settings, rng=Jitter(1.0))
    assert (rules.max_retries, rules.backoff_base_s, rules.backoff_cap_s, rules.deadline_s) == (
        4, 0.25, 3.0, 9.0,
    )
    assert rules.backoff_s(10) == 3.0
