"""The Backup drives page (prepare a new drive) and the pasted cloud storage (rclone) configuration: the
plugin's answer or refusal as its sentence, CSRF, audited, secrets never shown back."""

from __future__ import annotations

import time

import pytest

from pacs_dashboard.backend_api import BackendRefused, PacsDown
from tests.support.dashboard_fakes import FakeBackend, csrf_of, healthy_status

NOT_PLUGGED = (
    "The backup drive is not connected: /mnt/backup-drive/pacs-backup is on this box's own disk. Plug in the backup "
    "drive."
)


def drive_status() -> dict:
    now = time.time()
    st = healthy_status()
    st["offsite"]["usb"] = {
        "last_good_snapshot_age_s": 3600,
        "drive": {
            "connected": True,
            "sentence": "Drive Drive A is plugged in.",
            "repository_id": "aaaa1111",
            "drives": [
                {
                    "repository_id": "aaaa1111",
                    "label": "Drive A",
                    "prepared_at": now - 86400 * 8,
                    "last_seen_at": now - 60,
                    "last_snapshot_at": now - 3600,
                },
                {
                    "repository_id": "bbbb2222",
                    "label": "Drive B",
                    "prepared_at": now - 86400 * 7,
                    "last_seen_at": now - 86400 * 6,
                    "last_snapshot_at": now - 86400 * 6,
                },
            ],
            "swap_next": "Drive B",
            "light": "green",
            "advice": None,
        },
    }
    return st


class DriveBackend(FakeBackend):
    def __init__(self):
        super().__init__()
        self.status_value = drive_status()
        self.prepared: list[tuple[str, str]] = []
        self.refuse: Exception | None = None
        self.rclone_text: str | None = None

    def prepare_drive(self, target, label):
        self._up("prepare_drive")
        if self.refuse:
            raise self.refuse
        self.prepared.append((target, label))
        return {"repository_id": "cccc3333dddd", "runs": [9]}

    def rclone_config(self):
        self._up("rclone_config")
        remotes = [{"name": "clinicdrive", "type": "drive"}] if self.rclone_text else []
        return {"targets": ["cloud"], "remotes": remotes}

    def put_rclone_config(self, text):
        self._up("put_rclone_config")
        if "ssh =" in text:
            raise BackendRefused(
                "Line 3: the option 'ssh' makes rclone run a program, which is not allowed here. Remove it "
                "(use a password or key instead); nothing was saved."
            )
        self.rclone_text = text
        return {
            "targets": ["cloud"],
            "remotes": [{"name": "clinicdrive", "type": "drive"}],
            "message": "The cloud storage configuration is saved: 1 remote(s), clinicdrive (drive).",
        }


@pytest.fixture
def backend():
    return DriveBackend()


def audit_actions(app) -> list[tuple]:
    return [(r[3], r[4]) for r in app.extensions["db"].audit_rows(50)]


def test_drives_page_lists_each_drive_and_which_to_swap_next(logged_in):
    html = logged_in.get("/drives").get_data(as_text=True)
    assert "Backup drive (usb)" in html and "Drive Drive A is plugged in." in html
    assert "Drive to swap in next: <strong>Drive B</strong>" in html
    assert html.count('<tr><td data-label="Drive">Drive ') == 2 and 'data-label="Now">plugged in</td>' in html
    assert "Prepare a new drive" in html and 'name="csrf_token"' in html
    assert 'href="/drives"' in logged_in.get("/").get_data(as_text=True)  # in the menu


def test_prepare_a_drive_shows_the_answer_and_is_audited(app, logged_in, backend):
    token = csrf_of(logged_in.get("/drives").get_data(as_text=True))
    resp = logged_in.post("/drives/prepare", data={"target": "usb", "label": "Drive C", "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/drives")
    html = logged_in.get("/drives").get_data(as_text=True)
    assert "“Drive C” is now a backup drive for usb. Its first backup has started" in html
    assert backend.prepared == [("usb", "Drive C")]
    assert ("drive_prepared", "usb: 'Drive C' (backup id cccc3333)") in audit_actions(app)


@pytest.mark.parametrize(
    "refusal",
    [
        NOT_PLUGGED,
        "/mnt/backup-drive/pacs-backup already holds a backup; it was not touched. Use another drive, or remove "
        "that folder yourself if the drive may be erased.",
        "The drive at /mnt/backup-drive is not a file system this appliance can use (vfat): format it as ext4.",
    ],
)
def test_prepare_refused_shows_the_plugins_sentence_never_a_traceback(app, logged_in, backend, refusal):
    backend.refuse = BackendRefused(refusal)
    token = csrf_of(logged_in.get("/drives").get_data(as_text=True))
    resp = logged_in.post("/drives/prepare", data={"target": "usb", "label": "Drive C", "csrf_token": token})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="drive-error"' in html
    assert refusal.replace("'", "&#39;") in html and "Traceback" not in html
    assert 'value="Drive C"' in html  # what was typed stays in the box
    assert audit_actions(app)[0][0] == "drive_prepare_refused"


def test_prepare_needs_csrf_and_login(app, logged_in, backend):
    resp = logged_in.post("/drives/prepare", data={"target": "usb", "label": "X"})
    assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.post("/drives/prepare", data={"target": "usb"}).status_code == 401
    assert anonymous.get("/drives").status_code == 302
    assert backend.prepared == []


def test_drives_page_while_the_pacs_is_down_and_without_drive_targets(logged_in, backend):
    backend.down = True
    html = logged_in.get("/drives").get_data(as_text=True)
    assert "The PACS is not answering" in html and "Prepare this drive" not in html
    backend.down = False
    backend.status_value = healthy_status()
    html = logged_in.get("/drives").get_data(as_text=True)
    assert "No backup drive is set up" in html
    token = csrf_of(html)
    backend.prepare_drive = lambda t, label: (_ for _ in ()).throw(PacsDown("The PACS is not answering right now."))
    resp = logged_in.post("/drives/prepare", data={"target": "usb", "label": "", "csrf_token": token})
    assert resp.status_code == 503 and "The PACS is not answering right now." in resp.get_data(as_text=True)


def test_pasted_rclone_configuration_is_sent_listed_by_name_and_never_shown_back(app, logged_in, backend):
    html = logged_in.get("/settings").get_data(as_text=True)
    assert "Cloud storage (rclone) configuration" in html and "Configured remotes: none yet." in html
    token = csrf_of(html)
    text = '[clinicdrive]\ntype = drive\ntoken = {"access_token":"VERY-SECRET"}\n'
    resp = logged_in.post("/settings/cloud-storage", data={"rclone_config": text, "csrf_token": token})
    assert resp.status_code == 302
    html = logged_in.get("/settings").get_data(as_text=True)
    assert "The cloud storage configuration is saved: 1 remote(s), clinicdrive (drive)." in html
    assert "Configured remotes: clinicdrive (drive). Used by: cloud." in html
    assert "VERY-SECRET" not in html and backend.rclone_text == text
    assert ("rclone_config_saved", "remotes: clinicdrive (drive)") in audit_actions(app)
    assert all("VERY-SECRET" not in str(row) for row in app.extensions["db"].audit_rows(50))


def test_refused_rclone_configuration_says_why_and_keeps_nothing(app, logged_in, backend):
    token = csrf_of(logged_in.get("/settings").get_data(as_text=True))
    evil = "[box]\ntype = sftp\nssh = ssh -o ProxyCommand=SECRET-CMD host\n"
    resp = logged_in.post("/settings/cloud-storage", data={"rclone_config": evil, "csrf_token": token})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "makes rclone run a program" in html and "nothing was saved" in html
    assert "SECRET-CMD" not in html and backend.rclone_text is None
    assert audit_actions(app)[0][0] == "rclone_config_refused"
    empty = logged_in.post("/settings/cloud-storage", data={"rclone_config": "  ", "csrf_token": token})
    assert empty.status_code == 400 and "Paste the cloud storage" in empty.get_data(as_text=True)
    assert logged_in.post("/settings/cloud-storage", data={"rclone_config": "[x]\ntype = drive\n"}).status_code == 400


def test_cloud_storage_has_its_own_light_name_and_drive_advice_is_said_once():
    from pacs_dashboard.health import lights

    st = drive_status()
    st["offsite"]["cloud"] = {**st["offsite"]["offsite"], "repository": "rclone:clinicdrive:pacs-backup"}
    st["offsite"]["usb"]["drive"].update(connected=False, sentence=NOT_PLUGGED, light="amber", repository_id=None)
    st["offsite"]["usb"]["drive"]["advice"] = "Plug in the backup drive."
    ls = {light.key: light for light in lights(st, None, time.time())}
    assert ls["offsite-cloud"].label == "Cloud storage copy" and ls["offsite-cloud"].state == "green"
    assert ls["offsite-offsite"].label == "Offsite copy"
    assert ls["drive-usb"].advice.count("Plug in the backup drive.") == 1 and "own disk" in ls["drive-usb"].advice
