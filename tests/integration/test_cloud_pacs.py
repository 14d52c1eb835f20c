"""The cloud PACS copy: a second real Orthanc with the DICOMweb plugin stands in for the cloud PACS."""

from __future__ import annotations

import time

from tests.support.cloud_pacs import cloud_status
from tests.support.common import figure, wait_until
from tests.support.pacs import _wait_run, fill, orthanc_study_id, pacs_content


def test_cloud_pacs_gets_every_instance_across_an_outage_and_a_restart(
    orthanc_factory, minio_server, bucket, offsite_env
):
    cloud = orthanc_factory({}, plugin=False, name="cloud-pacs")
    env = {
        **minio_server.env(bucket),
        **offsite_env,
        "CLOUD_PACS_URL": cloud.url + "/dicom-web",
        "CLOUD_PACS_USERNAME": cloud.settings.username,
        "CLOUD_PACS_PASSWORD": cloud.settings.password,
    }
    o = orthanc_factory(env)
    t0 = time.monotonic()
    fill(o, studies=2, per_study=4)
    o.wait_replicated(8)
    wait_until(lambda: cloud_status(o)["verified"] == 8, 60, "8 instances verified in the cloud PACS")
    verified_s = time.monotonic() - t0
    assert pacs_content(cloud) == pacs_content(o)

    cloud.stop()  # the cloud PACS is down: copies wait, its own light says so
    fill(o, studies=1, per_study=3)
    o.wait_replicated(11)
    st = wait_until(
        lambda: (s := cloud_status(o))["reachable"] is False and s["depth"] == 3 and s, 60, "the outage seen"
    )
    assert "cannot be reached" in st["last_error"]["message"] and o.status()["state"] == "degraded"

    o.stop()  # and the appliance restarts meanwhile
    o.start()
    cloud.start()
    st = wait_until(
        lambda: (s := cloud_status(o))["verified"] == 11 and s["depth"] == 0 and s,
        120,
        "all 11 verified after the outage and the restart",
    )
    assert st["reachable"] is True and st["lag_s"]["p50"] is not None
    assert pacs_content(cloud) == pacs_content(o)  # 0 lost, byte for byte

    content = pacs_content(o)
    study = sorted(content)[0]
    o.http().delete(f"/studies/{orthanc_study_id(o, study)}")
    t0 = time.monotonic()
    run = _wait_run(o, o.http().post_json("/backup/restores", {"study_uid": study, "source": "cloud-pacs"})["run"])
    restore_s = time.monotonic() - t0
    assert run["state"] == "ok" and run["summary"]["verified"] == len(content[study]), run
    figure(
        "cloud_pacs_dicomweb",
        upload_to_verified_8_s=round(verified_s, 2),
        lag_p50_s=st["lag_s"]["p50"],
        restore_study_s=round(restore_s, 2),
    )
    assert pacs_content(o) == content
