"""The requests a process remembers for feedback: bounded by count, and by age with a store."""

from __future__ import annotations

from modelroute.state.recent import RecentRequests


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_latest_half_of_the_limit_is_always_remembered() -> None:
    recent = RecentRequests[int](limit=10)
    for n in range(1_000):
        recent.add(f"r{n}", n)
        assert len(recent) <= 10
        assert all(recent.get(f"r{k}") == k for k in range(max(0, n - 4), n + 1))
    assert recent.get("r0") is None and recent.get("r989") is None


def test_by_age_an_entry_stays_at_least_max_age_and_then_goes() -> None:
    clock = Clock()
    recent = RecentRequests[int](limit=1_000_000, max_age_s=10.0, clock=clock)
    added: dict[str, float] = {}
    for n in range(3_000):  # 100 a second for 30 s
        clock.now = n / 100
        recent.add(f"r{n}", n)
        added[f"r{n}"] = clock.now
        if n % 50 == 0:
            for request_id, at in added.items():
                if clock.now - at < 10.0:
                    assert recent.get(request_id) is not None, (request_id, at, clock.now)
        assert len(recent) <= 2 * 10 * 100 + 1  # never more than two generations of 10 s
    assert recent.get("r0") is None  # 30 s old
    assert recent.get("r999") is None  # 20 s old


def test_age_and_count_bound_together() -> None:
    clock = Clock()
    recent = RecentRequests[int](limit=100, max_age_s=60.0, clock=clock)
    for n in range(500):
        clock.now = n / 1000  # far within the age: the count decides
        recent.add(f"r{n}", n)
    assert len(recent) <= 100 and recent.get("r499") == 499 and recent.get("r0") is None
