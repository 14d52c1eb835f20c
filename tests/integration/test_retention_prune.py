"""Retention on real restic: forgetting old snapshots never drops a study still within its years.

Studies dated on both sides of the retention date are snapshotted, deleted from the PACS in between (so
older snapshots hold their only copy), and a keep policy of ``last=1`` is applied after every snapshot,
as a target with ``<NAME>_RESTIC_FORGET=true`` does. The repository is a local path the test may prune
(the offsite rest-server fixture is append-only).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from pacs_backup.clients.restic import Restic
from pacs_backup.jobs.retention import forget_with_retention
from pacs_backup.jobs.snapshots import OffsiteContext, take_snapshot
from pacs_backup.settings.retention import RetentionRule
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.catalog import Catalog
from pacs_backup.state.manifest import ManifestEntry, sha256_hex
from tests.support.dicomgen import make_study

TODAY = dt.date.today()
RULE = RetentionRule(years=3, source="test")


def dated(years_ago: int) -> str:
    return TODAY.replace(year=TODAY.year - years_ago, day=min(TODAY.day, 28)).strftime("%Y%m%d")


class Pacs:
    """Orthanc's storage folder and the catalog, as the plugin keeps them (files come and go)."""

    def __init__(self, tmp: Path) -> None:
        self.storage = tmp / "storage"
        self.storage.mkdir()
        self.catalog = Catalog(tmp / "plugin.sqlite")

    def add(self, name: str, study_date: str) -> str:
        study, files = make_study(2, study_date=study_date, patient_id=name)
        for n, data in enumerate(files):
            path = f"{name}/{n}.dcm"
            (self.storage / name).mkdir(exist_ok=True)
            (self.storage / path).write_bytes(data)
            entry = ManifestEntry(
                orthanc_id=f"{name}-{n}",
                study_uid=study,
                series_uid=f"{study}.1",
                sop_uid=f"{study}.1.{n}",
                patient_id=name,
                patient_name=name,
                owner="",
                species="",
                breed="",
                accession="",
                study_date=study_date,
                description="",
                modality="CR",
                path=path,
                key=f"dicom/{study}/{n}.dcm",
                sha256=sha256_hex(data),
                size=len(data),
            )
            self.catalog.record(entry, time.time())
        return study

    def delete(self, name: str) -> None:
        """Deleted in the PACS: the files go, the catalog keeps what the copies hold."""
        for f in (self.storage / name).iterdir():
            f.unlink()
        (self.storage / name).rmdir()


def target(repo: Path, password: str) -> TargetSettings:
    return TargetSettings(
        name="vault",
        repository=str(repo),
        password=password,
        password_file=None,
        env={},
        snapshot_interval_s=3600,
        drill_interval_s=86400,
        check_cycle=30,
        forget=True,
        keep={"last": "1"},
        drive=False,
    )


def held(restic: Restic) -> list[str]:
    return [s.id for s in restic.snapshots()]


def test_retention_prune_keeps_the_only_copy_of_studies_within_their_years(tmp_path: Path) -> None:
    pacs = Pacs(tmp_path)
    t = target(tmp_path / "repo", "retention-test-password")
    ctx: Any = OffsiteContext(
        reader=None,  # type: ignore[arg-type]
        catalog=pacs.catalog,
        store=None,
        storage_dir=pacs.storage,
        config_json=lambda: "{}",
        retention=RULE,
    )
    restic = ctx.restic(t)

    pacs.add("old", dated(10))  # past its three years: may go
    first = take_snapshot(ctx, t)
    pacs.delete("old")
    pacs.add("recent", dated(2))  # within its three years, soon deleted from the PACS
    second = take_snapshot(ctx, t)
    assert held(restic) == [second.snapshot_id], "the old study's snapshot is past retention and forgotten"
    pacs.delete("recent")
    pacs.add("today", TODAY.strftime("%Y%m%d"))
    third = take_snapshot(ctx, t)
    assert third.kept_for_retention == 1
    fourth = take_snapshot(ctx, t)

    # last=1 alone would keep only the fourth; the second holds the only copy of the recent study.
    assert set(held(restic)) == {second.snapshot_id, fourth.snapshot_id}
    assert first.snapshot_id not in held(restic) and third.snapshot_id not in held(restic)
    assert fourth.kept_for_retention == 1

    # Without the catalog (a technician's host), each snapshot's own manifest decides the same way; once
    # the recent study is past a shorter rule, its snapshot goes too.
    same = forget_with_retention(restic, t.keep, RULE, TODAY)
    assert same.forget == [] and list(same.kept_for) == [second.snapshot_id]
    shorter = forget_with_retention(restic, t.keep, RetentionRule(years=1), TODAY)
    assert shorter.forget == [second.snapshot_id] and not shorter.kept_for
    assert held(restic) == [fourth.snapshot_id]
    restic.check()
