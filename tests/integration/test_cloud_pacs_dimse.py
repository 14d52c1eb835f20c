"""The cloud PACS copy by DICOM (C-STORE, verified by C-FIND, restored by C-MOVE).

A second real Orthanc (no plugin) stands in for a cloud PACS reached over a VPN that speaks only DIMSE:
its AE title is CLOUDPACS, and it knows the appliance (CLINICBOX, CLOUD_PACS_DICOM_LOCAL_AET) as a
modality that may store, query and retrieve, as a provider would set it up.

What "identical" means here: a C-STORE carries the DICOM data set only, and the receiver writes its own
file meta header (Orthanc writes DCMTK's implementation UID and version), so the cloud PACS's files are
compared with the local PACS's by their data set (everything after group 0002), which must be identical
byte for byte; a study restored from the cloud PACS must have exactly the data sets the local PACS had,
and its files must be exactly the files the cloud PACS stored.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from tests.support.cloud_pacs import (
    cloud_status,
    dataset_digests,
    file_digests,
    files_by_study,
    orthanc_study_id,
    upload_studies,
    wait_run,
)
from tests.support.common import raw_request, sha256, wait_until

LOCAL_AET, REMOTE_AET = "CLINICBOX", "CLOUDPACS"


def declare_appliance(cloud, appliance) -> None:
    """Tell the stand-in cloud PACS about the appliance (kept in memory: again after each restart)."""
    body = {"AET": LOCAL_AET, "Host": "127.0.0.1", "Port": appliance.settings.dicom_port}
    status, text = raw_request(
        cloud.url + "/modalities/clinic",
        "PUT",
        json.dumps(body).encode(),
        auth=(cloud.settings.username, cloud.settings.password),
    )
    assert status == 200, text


def test_cloud_pacs_by_dicom_across_an_outage_a_restart_and_a_restore(
    orthanc_factory, minio_server, bucket, offsite_env
):
    cloud = orthanc_factory({}, plugin=False, name="cloud-pacs", aet=REMOTE_AET)
    env = {
        **minio_server.env(bucket),
        **offsite_env,
        "CLOUD_PACS_DICOM": f"{REMOTE_AET}@127.0.0.1:{cloud.settings.dicom_port}",
        "CLOUD_PACS_DICOM_LOCAL_AET": LOCAL_AET,
    }
    o = orthanc_factory(env)

    # The cloud PACS does not know the appliance yet: it takes the images (C-STORE is open) but refuses
    # the search, so nothing is marked verified and the reason is shown.
    content = upload_studies(o, studies=2, per_study=4)
    o.wait_replicated(8)
    st = wait_until(lambda: (s := cloud_status(o))["failing"] and s, 60, "the refused search seen")
    assert st["verified"] == 0 and st["reachable"] is True, st
    assert "refused to answer a search" in st["last_error"]["message"], st
    assert st["url"] == f"{REMOTE_AET}@127.0.0.1:{cloud.settings.dicom_port} (DICOM)"

    declare_appliance(cloud, o)
    st = wait_until(lambda: (s := cloud_status(o))["verified"] == 8 and s, 60, "8 instances verified by C-FIND")
    assert file_digests(o) == content  # the local PACS holds what was uploaded
    assert dataset_digests(cloud) == dataset_digests(o)
    meta = o.http().get_json("/instances")  # sent from the configured AE title
    sample = cloud.http().get_json(f"/instances/{meta[0]}/metadata?expand")
    assert sample["RemoteAET"] == LOCAL_AET and sample["CalledAET"] == REMOTE_AET, sample

    cloud.stop()  # the cloud PACS (or the VPN) is down: copies wait, its own light says so
    content.update(upload_studies(o, studies=1, per_study=3))
    o.wait_replicated(11)
    st = wait_until(
        lambda: (s := cloud_status(o))["reachable"] is False and s["depth"] == 3 and s, 60, "the outage seen"
    )
    assert "cannot be reached" in st["last_error"]["message"] and o.status()["state"] == "degraded", st

    o.stop()  # and the appliance restarts meanwhile
    o.start()
    cloud.start()
    declare_appliance(cloud, o)
    back = time.monotonic()
    st = wait_until(
        lambda: (s := cloud_status(o))["verified"] == 11 and s["depth"] == 0 and s["lag_s"]["p50"] is not None and s,
        120,
        "all 11 verified after the outage and the restart",
    )
    catch_up_s = time.monotonic() - back
    assert st["reachable"] is True and st["failing"] == 0 and st["lag_s"]["p50"] is not None, json.dumps(st)
    assert dataset_digests(cloud) == dataset_digests(o)  # 0 lost, data set byte for byte
    assert sum(len(v) for v in dataset_digests(cloud).values()) == 11

    study = sorted(content)[0]
    local_before = dataset_digests(o)[study]
    remote_files = sorted(sha256(f) for f in files_by_study(cloud)[study])
    o.http().delete(f"/studies/{orthanc_study_id(o, study)}")
    started = time.monotonic()
    run = wait_run(o, o.http().post_json("/backup/restores", {"study_uid": study, "source": "cloud-pacs"})["run"])
    restore_s = time.monotonic() - started
    # The study picked may be one of 4 images or the one of 3 sent during the outage.
    assert run["state"] == "ok" and run["summary"]["verified"] == len(content[study]) > 0, json.dumps(run)
    assert dataset_digests(o)[study] == local_before  # the same data sets as before the loss
    assert sorted(sha256(f) for f in files_by_study(o)[study]) == remote_files  # the cloud PACS's files

    started = time.monotonic()  # and in steady state: a new study, from upload to verified
    upload_studies(o, studies=1, per_study=4)
    wait_until(lambda: cloud_status(o)["verified"] == 15, 60, "the new study verified")
    steady_s = time.monotonic() - started
    print(
        f"cloud PACS by DICOM: a new study of 4 verified {steady_s:.1f} s after upload; after the outage "
        f"(lag p50 {st['lag_s']['p50']} s) caught up {catch_up_s:.1f} s after the remote came back; "
        f"restore of {len(content[study])} instances {restore_s:.1f} s"
    )


def test_cloud_pacs_by_dicom_restores_when_only_listed_devices_may_store(
    orthanc_factory, minio_server, bucket, offsite_env
):
    """With DICOM_MODALITIES set, Orthanc refuses C-STORE from AE titles it does not list: the restore's
    C-MOVE answers come in from the cloud PACS, which the plugin declared as a modality allowed to store."""
    cloud = orthanc_factory({}, plugin=False, name="cloud-pacs", aet=REMOTE_AET)
    env = {
        **minio_server.env(bucket),
        **offsite_env,
        "CLOUD_PACS_DICOM": f"{REMOTE_AET}@127.0.0.1:{cloud.settings.dicom_port}",
        "CLOUD_PACS_DICOM_LOCAL_AET": LOCAL_AET,
    }
    o = orthanc_factory(env)
    o.stop()
    o.settings = replace(o.settings, modalities="CR1@127.0.0.1")
    o.start()
    declare_appliance(cloud, o)
    study = next(iter(upload_studies(o, studies=1, per_study=2)))
    wait_until(lambda: cloud_status(o)["verified"] == 2, 60, "2 instances verified by C-FIND")
    before = dataset_digests(o)[study]
    o.http().delete(f"/studies/{orthanc_study_id(o, study)}")
    run = wait_run(o, o.http().post_json("/backup/restores", {"study_uid": study, "source": "cloud-pacs"})["run"])
    assert run["state"] == "ok" and run["summary"]["verified"] == 2, json.dumps(run)
    assert dataset_digests(o)[study] == before
