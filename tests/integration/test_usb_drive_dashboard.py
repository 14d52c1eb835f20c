"""Preparing a backup drive from the dashboard, against the real plugin: a loop-mounted ext4 image stands in
for the USB drive (mount needs root, as `make test` and CI have)."""

from __future__ import annotations

import re

import requests

from tests.support.common import wait_until
from tests.support.loopdrive import LoopDrive
from tests.support.pacs import fill


def login(d) -> requests.Session:
    return d.login()


def prepare(s: requests.Session, d, label: str) -> requests.Response:
    page = s.get(d.url + "/drives", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return s.post(d.url + "/drives/prepare", data={"target": "usb", "label": label, "csrf_token": token}, timeout=60)


def test_usb_drive_prepared_from_the_dashboard(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path
):
    mount = tmp_path / "media" / "backup-drive"
    mount.mkdir(parents=True)
    env = {
        **minio_server.env(bucket),
        **offsite_env,
        "BACKUP_EXTRA_TARGETS": "usb",
        "USB_RESTIC_REPOSITORY": str(mount / "pacs-backup"),
        "USB_RESTIC_PASSWORD_FILE": str(restic_password_file),
    }
    o = orthanc_factory(env)
    fill(o, studies=1, per_study=3)
    o.wait_replicated(3)
    d = dashboard_factory(o)
    s = login(d)

    # Not plugged in: the plugin's sentence on the page, nothing written in the drive's place.
    page = prepare(s, d, "Drive A")
    assert page.status_code == 400 and "not connected" in page.text and "Plug in the backup drive" in page.text
    assert "Traceback" not in page.text and list(mount.iterdir()) == []

    drive = LoopDrive(tmp_path / "a.img")
    drive.plug(mount, read_only=True)  # a file system this box can only read (an NTFS drive, say)
    try:
        page = prepare(s, d, "Drive A")
        assert page.status_code == 400 and "can only be read here" in page.text and "Format it" in page.text
        drive.unplug()
        drive.plug(mount)
        page = prepare(s, d, "Drive A")
        assert page.status_code == 200 and "“Drive A” is now a backup drive for usb" in page.text, page.text
        assert (mount / "pacs-backup" / "config").is_file()

        def snapshotted():
            html = s.get(d.url + "/drives", timeout=30).text
            row = re.search(r"<tr><td data-label=\"Drive\">Drive A</td>.*?</tr>", html, re.S)
            return row and "not yet</td>" not in row.group(0).split("</td>", 2)[2] and html

        html = wait_until(snapshotted, 120, "the first snapshot on drive A shown on the page")
        assert "Drive Drive A is plugged in." in html and 'data-label="Now">plugged in</td>' in html

        # Prepared already: the plugin refuses, the page says so, the drive is not touched.
        before = sorted(p.name for p in (mount / "pacs-backup").iterdir())
        page = prepare(s, d, "Drive B")
        assert page.status_code == 400 and "already holds a backup" in page.text
        assert sorted(p.name for p in (mount / "pacs-backup").iterdir()) == before

        audit = s.get(d.url + "/audit", timeout=30).text
        assert "drive_prepared" in audit and "drive_prepare_refused" in audit
    finally:
        drive.unplug()
