"""An rclone configuration pasted (as the dashboard's settings page does) reaches the plugin's cloud-storage
targets: real Orthanc + plugin, restic's rclone backend and rclone, a remote of type ``local`` standing in
for Google Drive (a folder of the unprivileged user rclone runs as). Refused options are refused with a sentence
and leave the file as it was."""

from __future__ import annotations

import json

from tests.support.common import raw_request, wait_until
from tests.support.pacs import fill, pacs_content
from tests.support.rclone_user import folder_for_rclone


def put_config(o, text: str, **extra: str) -> tuple[int, dict]:
    auth = (o.settings.username, o.settings.password)
    code, body = raw_request(
        o.url + "/backup/rclone-config",
        "PUT",
        json.dumps({"config": text, **extra}).encode(),
        auth,
        {"Content-Type": "application/json"},
    )
    return code, json.loads(body)


def test_rclone_config_pasted_then_snapshot_and_restore_one_study_byte_for_byte(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file
):
    with folder_for_rclone() as drive:
        pasted_then_snapshot_and_restore(
            orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, drive
        )


def pasted_then_snapshot_and_restore(orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, drive):
    cloud_folder = drive / "cloud-drive"
    env = {
        **minio_server.env(bucket),
        **offsite_env,
        "BACKUP_EXTRA_TARGETS": "cloud",
        "CLOUD_RESTIC_REPOSITORY": f"rclone:pasted:{cloud_folder}",
        "CLOUD_RESTIC_PASSWORD_FILE": str(restic_password_file),
    }
    o = orthanc_factory(env)
    conf = o.settings.work_dir / "pacs-backup-rclone.conf"  # beside the storage folder, outside the snapshots
    assert not conf.exists()
    assert o.http().get_json("/backup/rclone-config") == {
        "targets": ["cloud"],
        "remotes": [],
        "remote_names": ["pasted"],
    }

    text = "# pasted in the dashboard\n[pasted]\ntype = local\n"
    code, answer = put_config(o, text)
    assert code == 200, answer
    assert answer["remotes"] == [{"name": "pasted", "type": "local"}] and answer["targets"] == ["cloud"]
    assert conf.read_text() == text and conf.stat().st_mode & 0o777 == 0o600
    assert o.http().get_json("/backup/rclone-config")["remotes"] == [{"name": "pasted", "type": "local"}]

    # A refused option: a sentence, and the file the targets read is left exactly as it was.
    for evil in (
        "[pasted]\ntype = sftp\nhost = example.org\nssh = sh -c 'touch /tmp/pwned'\n",
        "[pasted]\ntype = webdav\nurl = http://127.0.0.1:1\nbearer_token_command = touch /tmp/pwned\n",
        "[pasted]\ntype = local\npassword_command = touch /tmp/pwned\n",
    ):
        code, refused = put_config(o, evil)
        assert code == 400 and "makes rclone run a program" in refused["error"], refused
        assert conf.read_text() == text
    for evil in (  # a connection string brings any option back, from any remote that names another
        "[pasted]\ntype = alias\nremote = :webdav,url='http://127.0.0.1:1',bearer_token_command='touch /tmp/pwned':\n",
        "[pasted]\ntype = local\nlinks = true\n",
    ):
        code, refused = put_config(o, evil)
        assert code == 400 and refused["error"].startswith("Line 3: [pasted]"), refused
        assert "Nothing was saved" in refused["error"] and conf.read_text() == text
    code, refused = put_config(o, "[pasted]\nurl = x\n")
    assert code == 400 and "type" in refused["error"] and conf.read_text() == text

    content = fill(o, studies=2, per_study=3)
    o.wait_replicated(6)
    snap = o.run_job("snapshots", "cloud")[0]
    assert snap["state"] == "ok", snap
    assert (cloud_folder / "config").is_file()  # the repository is on the remote the pasted file names
    drill = o.run_job("drills", "cloud")[0]
    assert drill["state"] == "ok" and drill["summary"]["checked"] >= 1, drill

    whole = pacs_content(o)
    lost = sorted(content)[0]
    sid = json.loads(o.http().request("POST", "/tools/lookup", lost.encode(), "text/plain"))[0]["ID"]
    o.http().delete(f"/studies/{sid}")
    assert lost not in pacs_content(o)
    run_id = o.http().post_json("/backup/restores", {"study_uid": lost, "source": "cloud"})["run"]
    run = wait_until(
        lambda: (r := o.http().get_json(f"/backup/runs/{run_id}"))["state"] in ("ok", "failed") and r,
        120,
        "the restore from the rclone target",
    )
    assert run["state"] == "ok" and run["summary"]["verified"] == 3, run
    assert pacs_content(o) == whole  # byte for byte
