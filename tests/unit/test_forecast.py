"""Growth and "full in N months" from what the copies really added."""

from __future__ import annotations

from pacs_backup.jobs.forecast import DAY, MONTH, forecast

NOW = 1_000_000_000.0
GB = 1_000_000_000


def test_steady_growth_and_a_quota_that_fills_in_two_months():
    # 90 days of 1 GB a day: 30 GB a month; 90 GB stored; a 150 GB plan is full in 2 months.
    adds = [(NOW - d * DAY, GB) for d in range(90)]
    f = forecast(adds, NOW, quota_bytes=150 * GB, warn_months=3)
    assert f["size_bytes"] == 90 * GB and abs(f["growth_bytes_per_month"] - 30 * GB) <= GB
    assert f["in_12_months_bytes"] == f["size_bytes"] + 12 * f["growth_bytes_per_month"]
    assert 1.9 <= f["months_until_full"] <= 2.1 and f["light"] == "amber" and "months" in f["advice"]


def test_young_copy_is_scaled_by_its_age_not_a_month():
    f = forecast([(NOW - 10 * DAY, 10 * GB)], NOW)
    assert abs(f["growth_bytes_per_month"] - 30 * GB) <= GB
    assert f["months_until_full"] is None and f["light"] == "green"


def test_full_or_no_growth():
    assert forecast([(NOW - MONTH * 2, 5 * GB)], NOW, quota_bytes=4 * GB)["light"] == "red"
    quiet = forecast([(NOW - MONTH * 2, GB)], NOW, quota_bytes=10 * GB)
    assert quiet["growth_bytes_per_month"] == 0 and quiet["months_until_full"] is None and quiet["light"] == "green"
    assert forecast([], NOW)["size_bytes"] == 0
