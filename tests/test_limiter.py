"""The adaptive in-flight limit, directly: exact cuts on 429s, slow probing, the provider's own figure."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import pytest

from pipeline.limiter import PROBE_MAX, PROBE_MIN, AdaptiveLimit


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(ceiling: int = 8, **kw: object) -> tuple[AdaptiveLimit, Clock]:
    clock = Clock()
    return AdaptiveLimit(ceiling=ceiling, clock=clock, **kw), clock  # type: ignore[arg-type]


def fill(lim: AdaptiveLimit, images: int) -> None:
    for _ in range(images):
        lim.start(1)


@pytest.mark.parametrize(
    ("ceiling", "in_flight", "weight", "expected"),
    [
        (8, 8, 1, 7),  # one refused out of 8: the provider held 7
        (8, 6, 2, 4),  # a 2-image request refused with 6 in flight
        (8, 1, 1, 1),  # never below one
        (4, 4, 1, 3),
    ],
)
def test_a_429_drops_to_in_flight_minus_the_refused(
    ceiling: int, in_flight: int, weight: int, expected: int
) -> None:
    lim, _ = limiter(ceiling)
    fill(lim, in_flight)
    lim.rate_limited(weight)
    assert (lim.limit, lim.known) == (expected, expected)


def test_a_burst_of_429s_counts_each_refused_request_once() -> None:
    lim, _ = limiter(8)
    fill(lim, 8)
    for _ in range(3):  # the provider holds 5: three of eight are refused at once
        lim.rate_limited(1)
    assert lim.limit == 5


def test_refused_requests_stop_counting_once_their_wait_is_over() -> None:
    lim, clock = limiter(8)
    fill(lim, 8)
    lim.rate_limited(1, retry_after=1.0)
    clock.now += 1.5  # the first one has been retried since, still counted in flight
    lim.rate_limited(1)
    assert lim.limit == 7


def test_a_runner_that_gives_the_slot_back_is_not_counted_twice() -> None:
    lim, _ = limiter(8)
    fill(lim, 8)
    for _ in range(3):
        lim.rate_limited(1)
        lim.wait_out(1)
    assert (lim.limit, lim.in_flight) == (5, 5)


def test_the_providers_own_figure_sets_the_ceiling() -> None:
    lim, _ = limiter(8)
    fill(lim, 8)
    lim.rate_limited(1, max_inflight=3)
    assert (lim.ceiling, lim.limit, lim.known) == (3, 3, 3)
    for _ in range(10 * PROBE_MAX):
        lim.success()
    assert lim.limit == 3  # no probing above what the provider says
    lim.rate_limited(1, max_inflight=20)
    assert (lim.ceiling, lim.limit) == (8, 8)  # never above the user's --concurrency


def test_it_probes_one_image_above_the_known_level_after_a_run_of_successes() -> None:
    lim, _ = limiter(8)
    fill(lim, 6)
    lim.rate_limited(1)
    assert lim.limit == 5
    for _ in range(PROBE_MIN - 1):
        lim.success()
    assert lim.limit == 5
    lim.success()
    assert lim.limit == 6
    for _ in range(PROBE_MIN):  # the probe held for a whole period: 6 is the new level
        lim.success()
    assert (lim.known, lim.limit) == (6, 7)


def test_a_refused_probe_goes_back_and_waits_twice_as_long() -> None:
    lim, clock = limiter(8)
    fill(lim, 6)
    lim.rate_limited(1)
    waits = []
    for _ in range(4):
        for n in itertools.count(1):
            lim.success()
            if lim.limit == 6:
                waits.append(n)
                break
        clock.now += 5
        lim.in_flight = 6
        lim.rate_limited(1)  # the probe at 6 is refused: the provider still holds 5
        assert lim.limit == 5
    assert waits == [PROBE_MIN, 2 * PROBE_MIN, 4 * PROBE_MIN, PROBE_MAX]


def test_below_the_known_level_it_climbs_back_quickly() -> None:
    lim, _ = limiter(8)
    fill(lim, 8)
    lim.rate_limited(1)  # known 7
    lim.limit = 3  # e.g. cut deeper by a burst that was not what it seemed
    for _ in range(3 + 4 + 5 + 6):
        lim.success()
    assert lim.limit == 7


def test_can_start_lets_a_lone_oversized_request_through() -> None:
    lim, _ = limiter(2)
    assert lim.can_start(4)
    lim.start(1)
    assert not lim.can_start(2)
    assert lim.can_start(1)


# ---- the whole loop, simulated: a provider holding L images, a client of concurrency 8 ----


@dataclass
class Outcome:
    ratio: float
    share_429: float


def simulate(limit_at: list[tuple[int, int]], images: int, give_back: bool) -> Outcome:
    """A discrete-event run: 0.3 s per image, 429s answered at once with Retry-After 1 s."""
    clock = Clock()
    clock.now = 0.0
    lim = AdaptiveLimit(ceiling=8, clock=clock)
    events: list[tuple[float, int, str]] = []
    seq = itertools.count()
    server, sent, done, refused, started = 0, 0, 0, 0, 0
    ideal = 0.0

    def provider_limit() -> int:
        return [lim_ for at, lim_ in limit_at if sent >= at][-1]

    def send(t: float) -> None:
        nonlocal server, sent, refused
        sent += 1
        if server < provider_limit():
            server += 1
            heapq.heappush(events, (t + 0.3, next(seq), "done"))
        else:
            refused += 1
            lim.rate_limited(1, retry_after=1.0)
            if give_back:
                lim.wait_out(1)
            heapq.heappush(events, (t + 1.0, next(seq), "retry"))

    t = 0.0
    while done < images:
        while started < images and lim.can_start(1):
            lim.start(1)
            started += 1
            send(t)
        t_next, _, kind = heapq.heappop(events)
        ideal += (t_next - t) * provider_limit() / 0.3
        t = clock.now = t_next
        if kind == "done":
            server -= 1
            done += 1
            lim.finish(1)
            lim.success()
        elif give_back:
            started -= 1  # back in the queue: started again when a slot frees
        else:
            send(t)
    return Outcome(done / ideal, refused / sent)


@pytest.mark.parametrize("give_back", [False, True])
@pytest.mark.parametrize(
    "schedule",
    [[(0, 5)], [(0, 3)], [(0, 8), (600, 4)], [(0, 4), (600, 7)]],
    ids=["5", "3", "8-then-4", "4-then-7"],
)
def test_the_loop_reaches_the_providers_limit_with_few_429s(
    schedule: list[tuple[int, int]], give_back: bool
) -> None:
    outcome = simulate(schedule, 2000, give_back)
    # A raised limit is found by slow probing; while the runner holds refused slots, each probe
    # costs a slot for a whole Retry-After, so that one case reaches 0.89 (measured), not 0.9.
    floor = 0.85 if (schedule[-1][1] > schedule[0][1] and not give_back) else 0.9
    assert outcome.ratio >= floor, outcome
    assert outcome.share_429 < 0.05, outcome
