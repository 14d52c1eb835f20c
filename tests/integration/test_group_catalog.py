"""The group catalog against a real group store (MinIO) and a real PostgreSQL.

Two clinics' objects are in the group store under their prefixes (with ``sha256`` metadata), one clinic's
manifest beside them. The clinics' catalog messages reach the group service, one of them only in part: the
reconcile finds what was dropped by reading the objects' headers (one header longer than the first read), and a
rebuild from the bucket alone gives the same studies as the messages and the reconcile did.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from minio import Minio
from pydicom import dcmread

from pacs_backup.contracts.keys import instance_key
from pacs_backup.state.manifest import MANIFEST_FORMAT, ManifestEntry
from pacs_dashboard import create_app
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.group.reconcile import ReconcileThread, rebuild, reconcile
from pacs_dashboard.group.search import search
from pacs_dashboard.group.service import parts
from pacs_dashboard.group.tokens import add_clinic
from tests.support.common import wait_until
from tests.support.dashboard_fakes import PASSWORD, FakeBackend
from tests.support.dicomgen import make_instance, new_uid
from tests.support.postgres import group_database_url, postgres_server  # noqa: F401 - fixtures
from tests.support.store_account import reader_store

# clinic -> studies: (patient name, owner, species, breed, patient id, modality, study date, instances, big header)
CLINICS: dict[str, list[tuple[str, str, str, str, str, str, str, int, bool]]] = {
    "north": [
        ("Müller^Bella", "Hans Müller", "Canine", "Labrador", "P-200", "DX", "20261126", 3, False),
        ("O'Brien^Rex", "Siobhan O'Brien", "Canine", "Terrier", "VET1042", "CT", "20261001", 4, True),
    ],
    "south": [
        ("García^Luna", "José García", "Feline", "Siamese", "P-201", "DX", "20250315", 2, False),
        ("Dubois^Zoë", "Émile Dubois", "Lapine", "Lop", "P-300", "CT", "20261120", 3, True),  # partly posted
        ("Nguyen^Max", "Lan Nguyen", "Equine", "Arabian", "EQ-9", "DX", "20240102", 2, False),  # never posted
    ],
}


def _file(study: str, series: str, params: tuple[Any, ...], n: int) -> bytes:
    name, owner, species, breed, pid, modality, date, _, big = params
    size = 300 if n == 0 else 16  # the first instance of each study is larger than one header read
    data = make_instance(
        study,
        series,
        patient_name=name,
        patient_id=pid,
        accession=f"A-{pid}",
        modality=modality,
        study_date=date,
        owner=owner,
        species=species,
        breed=breed,
        rows=size,
        cols=size,
        instance_number=n + 1,
    )
    if not big:
        return data
    ds = dcmread(io.BytesIO(data))  # a private element before the UIDs: a header longer than 64 KB
    block = ds.private_block(0x0009, "PACS TEST", create=True)
    block.add_new(0x10, "OB", b"\x01" * 150_000)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _entry(clinic: str, study: str, series: str, sop: str, params: tuple[Any, ...], data: bytes) -> ManifestEntry:
    """The row the clinic's catalog holds of one instance (its own key layout)."""
    name, owner, species, breed, pid, modality, date, _, _ = params
    return ManifestEntry(
        orthanc_id=hashlib.sha1(sop.encode()).hexdigest(),  # noqa: S324 - an id, not a fingerprint
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        patient_id=pid,
        patient_name=name,
        owner=owner,
        species=species,
        breed=breed,
        accession=f"A-{pid}",
        study_date=date,
        description="Synthetic study",
        modality=modality,
        path="",
        key=instance_key(study, series, sop),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def _fill_store(client: Minio, bucket: str) -> dict[str, list[list[ManifestEntry]]]:
    """Write both clinics' objects under their prefixes; returns each clinic's rows, study by study."""
    rows: dict[str, list[list[ManifestEntry]]] = {}
    for clinic, studies in CLINICS.items():
        rows[clinic] = []
        for params in studies:
            study, series = new_uid(), [new_uid(), new_uid()]
            entries = []
            for n in range(params[7]):
                data = _file(study, series[n % 2], params, n)
                sop = str(dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
                entry = _entry(clinic, study, series[n % 2], sop, params, data)
                client.put_object(
                    bucket,
                    instance_key(study, series[n % 2], sop, prefix=clinic),
                    io.BytesIO(data),
                    len(data),
                    metadata={"sha256": entry["sha256"]},
                )
                entries.append(entry)
            rows[clinic].append(entries)
    manifest = [json.dumps({"format": MANIFEST_FORMAT, "created_at": 0})]
    manifest += [json.dumps(e, ensure_ascii=False) for study in rows["north"] for e in study]
    body = ("\n".join(manifest) + "\n").encode()
    client.put_object(bucket, "north/catalog/manifest.jsonl", io.BytesIO(body), len(body))
    return rows


@pytest.fixture
def group_app(tmp_path: Path, minio_server: Any, bucket: str, group_database_url: str) -> Flask:  # noqa: F811
    plugin, reader = reader_store(minio_server, bucket)
    env = {
        "DASHBOARD_MODE": "group",
        "GROUP_DATABASE_URL": group_database_url,
        "GROUP_STORE_ENDPOINT": "http://" + reader["DASHBOARD_MINIO_ENDPOINT"],
        "GROUP_STORE_BUCKET": bucket,
        "GROUP_READER_ACCESS_KEY": reader["DASHBOARD_MINIO_ACCESS_KEY"],
        "GROUP_READER_SECRET_KEY": reader["DASHBOARD_MINIO_SECRET_KEY"],
        "DASHBOARD_DATA_DIR": str(tmp_path / "dashboard"),
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": PASSWORD,
        "DASHBOARD_COOKIE_SECURE": "false",
    }
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=FakeBackend())
    app.config["clinic_writer"] = Minio(
        plugin["MINIO_ENDPOINT"], plugin["MINIO_ACCESS_KEY"], plugin["MINIO_SECRET_KEY"], secure=False
    )
    return app


_SUMMARY = (
    "SELECT clinic, study_uid, patient_id, patient_name, display_name, owner, species, breed, accession, study_date, "
    "description, modalities, series, instances, size, search_text FROM studies ORDER BY clinic, study_uid"
)


def _summaries(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(_SUMMARY).fetchall()


def test_group_reconcile_finds_dropped_messages_and_rebuild_matches(
    group_app: Flask,
    bucket: str,
    group_database_url: str,  # noqa: F811
) -> None:
    rows = _fill_store(group_app.config["clinic_writer"], bucket)
    client = group_app.test_client()
    with group_app.app_context():
        group = parts()
        tokens = {clinic: add_clinic(group.catalog, clinic) for clinic in CLINICS}
    north = [e for study in rows["north"] for e in study]
    south_posted = rows["south"][0] + rows["south"][1][:1]  # the rest of the messages were lost
    for clinic, entries in (("north", north), ("south", south_posted)):
        body = {"clinic": clinic, "entries": [{**e, "verified_at": 1.8e9, "copies": ["group"]} for e in entries]}
        answer = client.post("/group/api/catalog", json=body, headers={"Authorization": f"Bearer {tokens[clinic]}"})
        assert answer.status_code == 200 and answer.get_json() == {"accepted": len(entries)}

    with group_app.app_context():
        catalog, store = parts().catalog, parts().store
        assert store is not None
        zoe = search(catalog, "zoe dubois")
        assert [s["instances"] for s in zoe] == [1]  # one of its three images was announced
        assert search(catalog, "nguyen max") == []  # its message never came

        reconciler = ReconcileThread(catalog, store, minutes=60)  # as the service runs it: at start, then hourly
        reconciler.start()
        try:
            wait_until(lambda: reconciler.last, 60, "the first reconcile")
        finally:
            reconciler.stop()
            reconciler.join(30)
        reports = {r.clinic: r for r in reconciler.last}
        assert (reports["north"].listed, reports["north"].added) == (7, 0)
        assert (reports["south"].listed, reports["south"].added, reports["south"].unreadable) == (7, 4, 0)
        assert reports["south"].headers_read == 4
        zoe = search(catalog, "Zoë émile lapine")
        assert [(s["clinic"], s["instances"], s["series"], s["modalities"]) for s in zoe] == [("south", 3, 2, "CT")]
        max_ = search(catalog, "equine", clinic="south")
        assert [(s["study_uid"], s["instances"]) for s in max_] == [(rows["south"][2][0]["study_uid"], 2)]
        assert search(catalog, "max", clinic="north") == []
        assert max_[0]["display_name"] == "Nguyen, Max" and max_[0]["owner"] == "Lan Nguyen"

    after_ingest = _summaries(group_database_url)
    assert len(after_ingest) == 5
    with group_app.app_context():
        reports = {r.clinic: r for r in rebuild(parts().catalog, parts().store)}  # type: ignore[arg-type]
    assert reports["north"].headers_read == 0  # all from its manifest
    assert reports["south"].headers_read == 7  # no manifest: every header read
    assert _summaries(group_database_url) == after_ingest
    with group_app.app_context():  # a reconcile after the rebuild finds nothing missing
        assert [r.added for r in reconcile(parts().catalog, parts().store)] == [0, 0]  # type: ignore[arg-type]
    with psycopg.connect(group_database_url) as conn:
        totals = conn.execute("SELECT id, studies, instances FROM clinics ORDER BY id").fetchall()
        keys = conn.execute("SELECT COUNT(*) FROM instances WHERE key LIKE clinic || '/dicom/%'").fetchone()
    assert totals == [("north", 2, 7), ("south", 3, 7)]
    assert keys == (14,)
