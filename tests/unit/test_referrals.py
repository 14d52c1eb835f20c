"""Sending a study to a referring clinic: its settings, and the durable queue behind each request."""

from __future__ import annotations

import pytest

from pacs_backup.contracts.errors import ConfigError, NotFound
from pacs_backup.replication.referrals import ReferralQueue
from pacs_backup.settings.cloud_peer import DicomPeerSettings
from pacs_backup.settings.referral_peers import load_referral_peers
from pacs_backup.state.catalog import Catalog
from pacs_backup.state.manifest import ManifestEntry
from tests.support.catalog_rows import manifest_entry


def entry(study: int, n: int) -> ManifestEntry:
    uid = f"1.2.{study}"
    key = f"dicom/{uid}/{uid}.1/{uid}.1.{n}.dcm"
    return manifest_entry(
        uid, f"{uid}.1", f"{uid}.1.{n}", orthanc_id=f"o{study}-{n}", key=key, sha256=f"sha-{study}-{n}"
    )


def test_referral_peers_are_read_by_name_with_a_label_and_one_way_to_reach_each(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    peers = load_referral_peers(
        {
            "REFERRAL_PEERS": "hillside, east-vets",
            "HILLSIDE_PEER_URL": "https://hillside.example/dicom-web",
            "HILLSIDE_PEER_USERNAME": "clinic",
            "HILLSIDE_PEER_PASSWORD_FILE": str(secret),
            "HILLSIDE_PEER_LABEL": "Hillside  Referral Hospital",
            "EAST_VETS_PEER_DICOM": "EASTVETS@10.0.0.7:104",
        }
    )
    assert [p.name for p in peers] == ["hillside", "east-vets"]
    assert peers[0].label == "Hillside Referral Hospital" and peers[0].password == "s3cret"
    assert "s3cret" not in repr(peers[0])
    assert peers[1].dicom == DicomPeerSettings("EASTVETS", "10.0.0.7", 104) and peers[1].label == "east-vets"
    assert load_referral_peers({}) == ()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REFERRAL_PEERS": "hillside"}, "HILLSIDE_PEER_URL"),
        ({"REFERRAL_PEERS": "h", "H_PEER_URL": "https://x/dw", "H_PEER_DICOM": "A@h:104"}, "H_PEER_DICOM"),
        ({"REFERRAL_PEERS": "h", "H_PEER_URL": "ftp://x/dw"}, "H_PEER_URL"),
        ({"REFERRAL_PEERS": "h", "H_PEER_URL": "https://x/dw", "H_PEER_USERNAME": "u"}, "H_PEER_PASSWORD"),
        ({"REFERRAL_PEERS": "h", "H_PEER_DICOM": "nohost"}, "H_PEER_DICOM"),
        ({"REFERRAL_PEERS": "../x"}, "REFERRAL_PEERS"),
        ({"REFERRAL_PEERS": "h,h", "H_PEER_URL": "https://x/dw"}, "REFERRAL_PEERS"),
    ],
)
def test_a_bad_referral_setting_is_one_sentence_naming_the_variable(env, named):
    with pytest.raises(ConfigError) as err:
        load_referral_peers(env)
    assert named in str(err.value)


def test_export_to_a_referring_clinic_queues_the_whole_study_and_reports_its_progress(tmp_path):
    path = tmp_path / "plugin.sqlite"
    catalog = Catalog(path)
    for n in range(3):
        catalog.record(entry(7, n), 100.0)
    catalog.record(entry(8, 0), 100.0)  # another study: never sent with this one
    queue, other = ReferralQueue(path, "hillside"), ReferralQueue(path, "east-vets")

    assert queue.request("1.2.7", "reception", 200.0) == 3
    with pytest.raises(NotFound, match="not in the backups"):
        queue.request("1.2.99", "reception", 200.0)
    due = queue.due(200.0)
    assert sorted(p.sop_uid for p in due) == ["1.2.7.1.0", "1.2.7.1.1", "1.2.7.1.2"]
    assert other.due(200.0) == []  # each clinic has its own queue
    assert queue.fill(300.0) == 0  # a referral queue is filled only on request

    queue.verified([due[0].orthanc_id], 201.0)
    queue.failed(due[1:], "Hillside did not answer", 500.0)
    (doc,) = queue.requests("1.2.7")
    assert (doc["state"], doc["instances"], doc["verified"], doc["requested_by"]) == ("failing", 3, 1, "reception")
    assert doc["last_error"] == "Hillside did not answer"
    assert queue.due(300.0) == []  # waits for its retry time
    queue.verified([p.orthanc_id for p in queue.due(500.0)], 501.0)
    (doc,) = queue.requests()
    assert (doc["state"], doc["verified"], doc["verified_at"], doc["last_error"]) == ("verified", 3, 501.0, None)

    assert queue.request("1.2.7", "dr-lee", 600.0) == 3  # asked again: sent and checked anew
    (doc,) = queue.requests("1.2.7")
    assert (doc["state"], doc["verified"], doc["requested_by"]) == ("sending", 0, "dr-lee")
    assert queue.stats(600.0)["depth"] == 3
