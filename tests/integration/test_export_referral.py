"""Sending one study to a referring clinic on request: two real Orthancs (no plugin) stand in for the
clinics, one reached by DICOMweb (STOW-RS, verified by QIDO-RS), one by DICOM (C-STORE, verified by C-FIND).
Only the study asked for goes, byte for byte (by DICOM: the same data set), and a clinic that is down gets
it once it is back; the request says so meanwhile."""

from __future__ import annotations

import json

from tests.support.cloud_pacs import dataset_digests, upload_studies
from tests.support.common import raw_request, wait_until
from tests.support.pacs import pacs_content

PEER_AET = "EASTVETS"


def referrals(o, study: str) -> list[dict]:
    return o.http().get_json(f"/backup/referrals?study={study}")["requests"]


def test_export_to_referring_clinics_by_dicomweb_and_dicom_sends_only_that_study_verified(
    orthanc_factory, minio_server, bucket, offsite_env
):
    web = orthanc_factory({}, plugin=False, name="hillside")
    dimse = orthanc_factory({}, plugin=False, name="eastvets", aet=PEER_AET)
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            **offsite_env,
            "REFERRAL_PEERS": "hillside,eastvets",
            "HILLSIDE_PEER_URL": web.url + "/dicom-web",
            "HILLSIDE_PEER_USERNAME": web.settings.username,
            "HILLSIDE_PEER_PASSWORD": web.settings.password,
            "HILLSIDE_PEER_LABEL": "Hillside Referral Hospital",
            "EASTVETS_PEER_DICOM": f"{PEER_AET}@127.0.0.1:{dimse.settings.dicom_port}",
        }
    )
    body = {"AET": "PACS", "Host": "127.0.0.1", "Port": o.settings.dicom_port}  # the clinic knows the appliance
    status, text = raw_request(
        dimse.url + "/modalities/clinic",
        "PUT",
        json.dumps(body).encode(),
        auth=(dimse.settings.username, dimse.settings.password),
    )
    assert status == 200, text
    upload_studies(o, studies=2, per_study=3)
    o.wait_replicated(6)
    content = pacs_content(o)
    study, other = sorted(content)

    peers = o.http().get_json("/backup/referrals")["peers"]
    assert [(p["name"], p["label"]) for p in peers] == [
        ("hillside", "Hillside Referral Hospital"),
        ("eastvets", "eastvets"),
    ]
    web.stop()  # Hillside is down when staff ask: the request waits and says why
    answer = o.http().post_json("/backup/referrals", {"peer": "hillside", "study_uid": study, "requested_by": "lee"})
    assert answer["queued"] == 3
    o.http().post_json("/backup/referrals", {"peer": "eastvets", "study_uid": study, "requested_by": "lee"})
    waiting = wait_until(
        lambda: [r for r in referrals(o, study) if r["peer"] == "hillside" and r["last_error"]], 60, "the outage seen"
    )
    assert waiting[0]["state"] == "sending" and "cannot be reached" in waiting[0]["last_error"], waiting
    web.start()

    done = wait_until(
        lambda: (rs := referrals(o, study)) and all(r["state"] == "verified" for r in rs) and len(rs) == 2 and rs,
        120,
        "the study verified at both clinics",
    )
    assert {(r["peer"], r["verified"], r["requested_by"]) for r in done} == {
        ("hillside", 3, "lee"),
        ("eastvets", 3, "lee"),
    }
    assert pacs_content(web) == {study: content[study]}  # only that study, byte for byte
    assert dataset_digests(dimse) == {study: dataset_digests(o)[study]}
    assert referrals(o, other) == []

    refused = raw_request(
        o.url + "/backup/referrals",
        "POST",
        json.dumps({"peer": "nowhere", "study_uid": study}).encode(),
        auth=(o.settings.username, o.settings.password),
        headers={"Content-Type": "application/json"},
    )
    assert refused[0] == 404 and "no referring clinic 'nowhere'" in refused[1], refused
