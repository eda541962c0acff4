"""SingleFlight: one run per key, joiners share its outcome, each waiter keeps its deadline."""

from __future__ import annotations

import threading
import time

import pytest

from notionfs.errors import DeadlineExceeded
from notionfs.flight import SingleFlight


def _start(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = threading.Event()
    runs = []

    def work() -> int:
        runs.append(1)
        release.wait(5)
        return 42

    results: list[int] = []
    threads = [_start(lambda: results.append(flights.run("k", work))) for _ in range(8)]
    deadline = time.monotonic() + 5
    while not flights.in_flight("k") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # let the joiners arrive
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [42] * 8
    assert len(runs) == 1
    assert not flights.in_flight("k")


def test_owner_exception_reaches_joiners_and_next_caller_runs_again() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = threading.Event()
    errors: list[BaseException] = []

    def failing() -> int:
        release.wait(5)
        raise ValueError("boom")

    def call() -> None:
        try:
            flights.run("k", failing)
        except ValueError as exc:
            errors.append(exc)

    threads = [_start(call) for _ in range(3)]
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(errors) == 3
    assert flights.run("k", lambda: 7) == 7  # a failure is not remembered


def test_joiner_deadline_does_not_cancel_the_owner() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = threading.Event()
    done: list[str] = []
    owner = _start(lambda: done.append(flights.run("k", lambda: (release.wait(5), "v")[1])))
    time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        flights.run("k", lambda: "never", timeout_s=0.1)
    assert time.monotonic() - started < 2
    release.set()
    owner.join(5)
    assert done == ["v"]


def test_deadline_from_start_counts_the_flights_age() -> None:
    now = [100.0]
    flights: SingleFlight[str, int] = SingleFlight(clock=lambda: now[0])
    release = threading.Event()
    _start(lambda: flights.run("k", lambda: (release.wait(5), 1)[1]))
    time.sleep(0.05)
    assert flights.started_at("k") == 100.0
    now[0] = 130.0  # the flight is already older than the joiner's whole budget
    with pytest.raises(DeadlineExceeded, match="within 10 s of its start"):
        flights.run("k", lambda: 0, timeout_s=10.0, from_start=True, what="probe")
    release.set()


def test_distinct_keys_do_not_wait_for_each_other() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = threading.Event()
    _start(lambda: flights.run("slow", lambda: (release.wait(5), 1)[1]))
    time.sleep(0.05)
    started = time.monotonic()
    assert flights.run("fast", lambda: 2, timeout_s=1) == 2
    assert time.monotonic() - started < 1
    release.set()
