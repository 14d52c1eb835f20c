"""The order in which `make test` hands test files to its two processes: the longest first.

`--dist loadfile --no-loadscope-reorder` keeps each file in one process and gives a process the next file in
collection order when it runs low. Started with the longest files and ended with the many short ones, both
processes stay busy to the end; xdist's own order (most tests first) left the few-test, long files (the
Compose stack, the chaos and benchmark tests) for last, often on one process. The seconds below were measured
one file at a time (`pytest FILE --durations=0`) on the 2-core machine with warm caches; a file not listed
costs its folder's default. Refresh them when a file's cost changes a lot.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.common import ROOT

MEASURED_S: dict[str, float] = {
    "tests/integration/test_offsite.py": 88,
    "tests/stack/test_compose.py": 85,
    "tests/stack/test_compose_postgresql.py": 79,
    "tests/integration/test_group_three_clinics.py": 30,
    "tests/chaos/test_chaos.py": 41,
    "tests/browser/test_dashboard_browser.py": 39,
    "tests/bench/test_bench_harness.py": 37,
    "tests/integration/test_replication.py": 36,
    "tests/integration/test_dashboard_stack.py": 34,
    "tests/integration/test_getting_back.py": 32,
    "tests/integration/test_usb_drive.py": 31,
    "tests/stack/test_bring_your_own_orthanc_debian13.py": 30,
    "tests/browser/test_viewer_browser.py": 28,
    "tests/integration/test_limits_security.py": 26,
    "tests/integration/test_cloud_pacs_dimse.py": 25,
    "tests/browser/test_dashboard_phone_and_a11y.py": 23,
    "tests/integration/test_dicomweb_copies.py": 23,
    "tests/integration/test_plugin_security.py": 20,
    "tests/integration/test_technician_scripts.py": 20,
    "tests/integration/test_make_run.py": 19,
    "tests/integration/test_rclone_cloud.py": 19,
    "tests/integration/test_retention_prune.py": 19,
    "tests/browser/test_copy_kinds_browser.py": 18,
    "tests/integration/test_bandwidth_rclone.py": 18,
    "tests/integration/test_copy_sources.py": 17,
    "tests/integration/test_bandwidth_offsite.py": 14,
    "tests/integration/test_restore_streaming.py": 14,
    "tests/integration/test_cloud_pacs.py": 12,
    "tests/integration/test_rclone_pasted_config.py": 11,
    "tests/chaos/test_disk_full.py": 10,
    "tests/integration/test_rclone_security.py": 10,
    "tests/chaos/test_security_claims.py": 9,
    "tests/integration/test_bring_your_own_orthanc.py": 9,
    "tests/integration/test_metrics.py": 9,
    "tests/unit/test_replicator.py": 9,
    "tests/integration/test_alert_delivery.py": 8,
    "tests/integration/test_group_copy.py": 8,
    "tests/integration/test_usb_drive_dashboard.py": 8,
    "tests/browser/test_share_browser.py": 7,
    "tests/chaos/test_orthanc_crash_recovery.py": 7,
    "tests/dashboard/test_hardening.py": 7,
    "tests/integration/test_export_referral.py": 6,
    "tests/unit/test_restic.py": 6,
    "tests/integration/test_offsite_auth.py": 5,
    "tests/integration/test_supervise.py": 5,
}

# Placed as if they took this long. The first stack file runs dev/docker-setup, which on a fresh machine
# installs Docker and builds every image (many minutes): it goes first. The other stack files wait for that
# (tests/support/compose.docker_setup holds a lock), so they go mid-run, when it is long done.
PLACED_AS_S: dict[str, float] = {
    "tests/stack/test_compose.py": 600,
    "tests/stack/test_compose_postgresql.py": 20,
    "tests/stack/test_bring_your_own_orthanc_debian13.py": 20,
}

FOLDER_DEFAULT_S = {
    "tests/stack": 60.0,
    "tests/chaos": 30.0,
    "tests/bench": 30.0,
    "tests/browser": 15.0,
    "tests/integration": 10.0,
    "tests/dashboard": 1.0,
    "tests/unit": 0.5,
}


def file_cost(path: Path) -> float:
    """Expected seconds for the test file at ``path`` (its place in the order)."""
    try:
        rel = path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return 0.0
    if rel in PLACED_AS_S:
        return PLACED_AS_S[rel]
    if rel in MEASURED_S:
        return MEASURED_S[rel]
    folder = rel.rsplit("/", 1)[0]
    return FOLDER_DEFAULT_S.get(folder, 1.0)
