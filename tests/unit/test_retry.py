import random

from pacs_backup.contracts.retry import RetryPolicy


def test_retry_delay_grows_exponentially_within_jitter():
    p = RetryPolicy(base_s=1.0, cap_s=1000.0)
    rng = random.Random(1)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0)]:
        d = p.delay(attempt, rng)
        assert full * 0.5 <= d <= full


def test_retry_delay_is_capped_even_for_huge_attempt_counts():
    p = RetryPolicy(base_s=1.0, cap_s=60.0)
    assert all(30.0 <= p.delay(n) <= 60.0 for n in (7, 50, 10_000))


def test_retry_jitter_spreads_simultaneous_failures():
    p = RetryPolicy(base_s=1.0, cap_s=60.0)
    assert len({round(p.delay(5), 6) for _ in range(50)}) > 10
