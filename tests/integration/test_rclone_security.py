"""Hostile rclone configurations on the real programs (Orthanc + plugin, restic, rclone): a file written straight
where the cloud-storage target reads it, as an older version or a hand could have, is refused at use with a
sentence; the command it tries to run never runs (no canary file appears) after a snapshot, a look at the
forecast and a 'test connection'. And rclone really runs as the unprivileged user: what it writes is that
user's, and it cannot write where only root may."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.common import raw_request
from tests.support.pacs import fill
from tests.support.rclone_user import folder_for_rclone, rclone_user_of_root_run


def connection_test(o) -> dict:
    """The settings page's 'Test the connection' (the plugin's PUT /backup/rclone-config with test: true)."""
    auth = (o.settings.username, o.settings.password)
    body = json.dumps({"test": True}).encode()
    code, answer = raw_request(
        o.url + "/backup/rclone-config", "PUT", body, auth, {"Content-Type": "application/json"}, timeout=180
    )
    assert code == 200, answer
    return json.loads(answer)


def hostile(canary: Path) -> list[tuple[str, str]]:
    """Each: the configuration, and the words of its refusal. Every one of them runs ``touch <canary>``
    through rclone 1.60 when it is used as it is (checked on the code before the allow-list)."""
    touch = f"bearer_token_command='touch {canary}'"
    inline = f":webdav,url='http://127.0.0.1:9',{touch}:dir"
    store = "\n[store]\ntype = webdav\nurl = http://127.0.0.1:9\n"
    return [
        (f"[cloud]\ntype = alias\nremote = {inline}\n", "connection string"),
        (f"[cloud]\ntype = crypt\nremote = {inline}\npassword = c2VjcmV0c2VjcmV0\n", "connection string"),
        (f"[cloud]\ntype = chunker\nremote = store,{touch}:\n{store}", "connection string"),
        (f"[cloud]\ntype = combine\nupstreams = a={inline}\n", "connection string"),
        (f"[cloud]\ntype = hasher\nremote = {inline}\n", "connection string"),
        (f"[cloud]\ntype = webdav\nurl = http://127.0.0.1:9\nbearer_token_command = touch {canary}\n", "run a program"),
    ]


def test_security_hostile_rclone_file_is_refused_at_use_and_runs_nothing(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path
):
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    canaries.chmod(0o1777)  # a command run as any user could leave its canary here
    conf = tmp_path / "rclone.conf"
    conf.write_text("[cloud]\ntype = local\n")
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            **offsite_env,
            "BACKUP_EXTRA_TARGETS": "cloud",
            "CLOUD_RESTIC_REPOSITORY": "rclone:cloud:pacs-backup",
            "CLOUD_RESTIC_PASSWORD_FILE": str(restic_password_file),
            "CLOUD_RESTIC_RCLONE_CONFIG": str(conf),
            "CLOUD_RESTIC_QUOTA_GB": "1",
        }
    )
    fill(o, studies=1, per_study=2)
    o.wait_replicated(2)
    for number, (text, words) in enumerate(hostile(canaries / "canary")):
        conf.write_text(text)  # straight into the file: no paste check
        snap = o.run_job("snapshots", "cloud")[0]
        assert snap["state"] == "failed", (number, snap)
        assert "refused, so rclone was not started" in snap["error"] and words in snap["error"], snap["error"]
        assert "Line " in snap["error"] and "[cloud]" in snap["error"] and "touch" not in snap["error"]

        forecast = o.status()["offsite"]["cloud"]["forecast"]  # read from the run history: runs no program
        assert forecast["quota_bytes"] == 1_000_000_000 and forecast["size_bytes"] == 0, forecast

        tested = connection_test(o)
        assert [t["ok"] for t in tested["tests"]] == [False], tested
        assert "refused, so rclone was not started" in tested["message"] and words in tested["message"], tested

        listed = o.http().get_json("/backup/rclone-config")
        assert words in listed["refused"], listed  # the settings page says the file in place is not used
        assert not list(canaries.iterdir()), f"configuration {number} ran a program: {text}"


def test_security_rclone_runs_as_the_unprivileged_user(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path
):
    uid = rclone_user_of_root_run().pw_uid
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o700)
    conf = tmp_path / "rclone.conf"
    conf.write_text("[cloud]\ntype = local\n\n[closed]\ntype = alias\nremote = cloud:" + str(root_only) + "\n")
    with folder_for_rclone() as cloud_folder:
        o = orthanc_factory(
            {
                **minio_server.env(bucket),
                **offsite_env,
                "BACKUP_EXTRA_TARGETS": "cloud,closed",
                "CLOUD_RESTIC_REPOSITORY": f"rclone:cloud:{cloud_folder}/repo",
                "CLOUD_RESTIC_PASSWORD_FILE": str(restic_password_file),
                "CLOUD_RESTIC_RCLONE_CONFIG": str(conf),
                "CLOSED_RESTIC_REPOSITORY": "rclone:closed:repo",
                "CLOSED_RESTIC_PASSWORD_FILE": str(restic_password_file),
                "CLOSED_RESTIC_RCLONE_CONFIG": str(conf),
            }
        )
        fill(o, studies=1, per_study=2)
        o.wait_replicated(2)
        snap = o.run_job("snapshots", "cloud")[0]
        assert snap["state"] == "ok", snap
        written = list((cloud_folder / "repo").rglob("*"))
        assert written and {p.stat().st_uid for p in written} == {uid}  # rclone wrote them, as pacs-rclone
        drill = o.run_job("drills", "cloud")[0]
        assert drill["state"] == "ok", drill
        tested = {t["target"]: t for t in connection_test(o)["tests"]}
        assert tested["cloud"]["ok"] and "password opens" in tested["cloud"]["message"], tested

        # restic (root) reads the PACS's files, but rclone cannot write where only root may.
        closed = o.run_job("snapshots", "closed")[0]
        assert closed["state"] == "failed" and "create repository" in closed["error"], closed
        assert not os.listdir(root_only)
