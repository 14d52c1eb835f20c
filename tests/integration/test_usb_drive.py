"""External drives as a copy: used only when really plugged in, rotated, and restored from.

Loop-mounted ext4 images stand in for USB drives (mount needs root: `make test` and CI run as root).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.common import figure, raw_request, wait_until
from tests.support.loopdrive import LoopDrive
from tests.support.pacs import fill, orthanc_env, pacs_content, script


@pytest.fixture
def drives(tmp_path):
    made: list[LoopDrive] = []

    def make(name: str) -> LoopDrive:
        drive = LoopDrive(tmp_path / f"{name}.img")
        made.append(drive)
        return drive

    yield make
    for d in made:
        d.unplug()


def usb_env(mount: Path, restic_password_file: Path) -> dict[str, str]:
    return {
        "BACKUP_EXTRA_TARGETS": "usb",
        "USB_RESTIC_REPOSITORY": str(mount / "pacs-backup"),
        "USB_RESTIC_PASSWORD_FILE": str(restic_password_file),
    }


def drive_status(o) -> dict:
    return o.status()["offsite"]["usb"]["drive"]


def test_usb_drive_not_plugged_in_writes_nothing_then_plug_swap_and_restore(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, drives, tmp_path
):
    mount = tmp_path / "media" / "backup-drive"
    mount.mkdir(parents=True)
    env = {**minio_server.env(bucket), **offsite_env, **usb_env(mount, restic_password_file)}
    o = orthanc_factory(env)
    content = fill(o, studies=2, per_study=3)
    o.wait_replicated(6)

    # Not plugged in: asked for a snapshot, the appliance says so and writes nothing anywhere.
    code_and_text = _post(o, "/backup/snapshots", {"target": "usb"})
    assert code_and_text[0] == 409 and "not connected" in code_and_text[1] and "Plug in" in code_and_text[1]
    assert list(mount.iterdir()) == []
    st = drive_status(o)
    assert not st["connected"] and st["light"] == "amber" and st["advice"] == "Plug in the backup drive."
    prepare = script("prepare-drive", "--target", "usb", "--label", "Drive A", env=orthanc_env(o))
    assert prepare.returncode == 1 and "own disk" in prepare.stderr, prepare.stdout + prepare.stderr
    assert list(mount.iterdir()) == []

    # Drive A plugged in and prepared: a first snapshot goes to it.
    a = drives("a")
    a.plug(mount)
    prepare = script("prepare-drive", "--target", "usb", "--label", "Drive A", env=orthanc_env(o))
    assert prepare.returncode == 0, prepare.stdout + prepare.stderr
    run_ok(o, "usb")
    assert drive_status(o)["connected"]

    # Swap: drive B (new) prepared, then A comes back and is brought up to date by itself.
    a.unplug()
    assert not wait_until(lambda: not drive_status(o)["connected"] and drive_status(o), 10, "A unplugged")["connected"]
    b = drives("b")
    b.plug(mount)
    assert script("prepare-drive", "--target", "usb", "--label", "Drive B", env=orthanc_env(o)).returncode == 0
    run_ok(o, "usb")
    fill(o, studies=1, per_study=2)
    o.wait_replicated(8)
    b.unplug()
    before = len(o.http().get_json("/backup/runs?kind=snapshot&limit=100"))
    a.plug(mount)
    wait_until(
        lambda: len(o.http().get_json("/backup/runs?kind=snapshot&limit=100")) > before,
        30,
        "a snapshot started by itself when drive A appeared",
    )
    run_ok(o, "usb")
    st = drive_status(o)
    assert st["connected"] and {d["label"] for d in st["drives"]} == {"Drive A", "Drive B"}
    assert st["swap_next"] == "Drive B" and st["light"] == "green"

    # Restore one study and the whole PACS from drive A alone.
    lost = sorted(content)[0]
    sid = json.loads(o.http().request("POST", "/tools/lookup", lost.encode(), "text/plain"))[0]["ID"]
    o.http().delete(f"/studies/{sid}")
    tech = {**orthanc_env(o), **usb_env(mount, restic_password_file)}
    t0 = time.monotonic()
    done = script("restore-study", "--from", "offsite", "--target", "usb", lost, env=tech)
    study_s = time.monotonic() - t0
    assert done.returncode == 0 and "3 of 3" in done.stdout, done.stdout + done.stderr
    whole = pacs_content(o)
    o.stop()
    new_box = orthanc_factory({}, plugin=False, name="new-box")
    t0 = time.monotonic()
    done = script(
        "disaster-recovery",
        "--from",
        "offsite",
        "--target",
        "usb",
        env={**orthanc_env(new_box), **usb_env(mount, restic_password_file)},
    )
    whole_s = time.monotonic() - t0
    assert done.returncode == 0 and "8 of 8" in done.stdout, done.stdout + done.stderr
    assert pacs_content(new_box) == whole
    figure("usb_drive", restore_study_3_s=round(study_s, 2), disaster_recovery_8_s=round(whole_s, 2))


def run_ok(o, target: str) -> dict:
    def last():
        runs = [r for r in o.http().get_json("/backup/runs?kind=snapshot&limit=20") if r["target"] == target]
        return runs[0] if runs and runs[0]["state"] in ("ok", "failed") else None

    run = wait_until(last, 120, f"snapshot of {target}")
    assert run["state"] == "ok", run
    return run


def _post(o, uri: str, payload: dict) -> tuple[int, str]:
    auth = (o.settings.username, o.settings.password)
    return raw_request(o.url + uri, "POST", json.dumps(payload).encode(), auth, {"Content-Type": "application/json"})


def test_security_a_drive_path_behind_a_symlink_or_in_memory_is_refused(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, drives, tmp_path
):
    # A real drive, reached through a symbolic link; and a tmpfs (memory) where a drive should be.
    real = tmp_path / "media" / "real-drive"
    drives("a").plug(real)
    link = tmp_path / "media" / "backup-drive"
    link.symlink_to(real)
    ram = tmp_path / "media" / "ram"
    ram.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(ram)], check=True)
    try:
        env = {
            **minio_server.env(bucket),
            **offsite_env,
            **usb_env(link, restic_password_file),
            "BACKUP_EXTRA_TARGETS": "usb,ram",
            "RAM_RESTIC_REPOSITORY": str(ram / "pacs-backup"),
            "RAM_RESTIC_PASSWORD_FILE": str(restic_password_file),
        }
        o = orthanc_factory(env)
        for target, said in (("usb", "symbolic link"), ("ram", "file system in memory (tmpfs)")):
            prepared = script("prepare-drive", "--target", target, "--label", "Drive A", env=orthanc_env(o))
            assert prepared.returncode == 1 and said in prepared.stderr, prepared.stdout + prepared.stderr
            code, text = _post(o, "/backup/snapshots", {"target": target})
            assert code == 409 and said in text, text
            st = o.status()["offsite"][target]["drive"]
            assert not st["connected"] and said in st["sentence"], st
        assert sorted(p.name for p in real.iterdir()) == ["lost+found"]  # nothing written on the drive
        assert list(ram.iterdir()) == []
    finally:
        subprocess.run(["umount", str(ram)], check=False)
