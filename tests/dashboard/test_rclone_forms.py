"""The settings page's cloud storage forms: one per provider (paste the token rclone authorize printed, pick the
folder), whose text goes through the plugin's own check; a refusal names the field, never its value; and a
'Test the connection' button that shows each target's sentence."""

from __future__ import annotations

import pytest

from pacs_backup.contracts.errors import BadRequest
from pacs_backup.rclone.config import parse
from pacs_backup.rclone.forms import FORMS
from pacs_dashboard.backend_api import BackendRefused
from tests.support.dashboard_fakes import FakeBackend, csrf_of

TOKEN = '{"access_token":"VERY-SECRET","token_type":"Bearer","refresh_token":"r","expiry":"2026-01-01T10:00:00Z"}'


class CheckingBackend(FakeBackend):
    """The plugin's side: the same check as PUT /backup/rclone-config."""

    def __init__(self):
        super().__init__()
        self.saved: str | None = None
        self.tests = [{"target": "cloud", "ok": True, "message": "rclone:gdrive:pacs answers."}]

    def rclone_config(self):
        self._up("rclone_config")
        return {"targets": ["cloud"], "remotes": [], "remote_names": ["gdrive"]}

    def put_rclone_config(self, text):
        self._up("put_rclone_config")
        try:
            remotes = parse(text)
        except BadRequest as exc:
            raise BackendRefused(f"{exc} Nothing was saved.") from None
        self.saved = text
        listed = ", ".join(f"{r.name} ({r.type})" for r in remotes)
        return {"remotes": [r.as_dict() for r in remotes], "message": f"Saved: {listed}."}

    def test_rclone_connection(self):
        self._up("test_rclone_connection")
        return {"tests": self.tests, "message": " ".join(t["message"] for t in self.tests)}


@pytest.fixture
def backend():
    return CheckingBackend()


def test_a_form_per_provider_with_the_name_the_target_uses(logged_in):
    html = logged_in.get("/settings").get_data(as_text=True)
    for kind in FORMS:
        assert f'id="rclone-form-{kind}"' in html
    assert 'name="remote_name" value="gdrive"' in html and "Google Drive" in html and "Backblaze B2" in html
    assert "Test the connection" in html and 'name="rclone_config"' in html


def test_the_drive_form_saves_a_checked_configuration_and_never_shows_the_token(logged_in, backend):
    token = csrf_of(logged_in.get("/settings").get_data(as_text=True))
    form = {"csrf_token": token, "provider": "drive", "remote_name": "gdrive", "root_folder_id": "1AbC"}
    resp = logged_in.post("/settings/cloud-storage/form", data={**form, "token": f"--->\n{TOKEN}\n<---End paste"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert backend.saved is not None and "[gdrive]\ntype = drive\n" in backend.saved
    assert "root_folder_id = 1AbC" in backend.saved
    html = logged_in.get("/settings").get_data(as_text=True)
    assert "Saved: gdrive (drive)." in html and "VERY-SECRET" not in html


def test_security_a_refused_field_is_named_and_not_shown_back(logged_in, backend):
    token = csrf_of(logged_in.get("/settings").get_data(as_text=True))
    form = {"csrf_token": token, "provider": "webdav", "remote_name": "gdrive", "vendor": "other", "pass": "p"}
    resp = logged_in.post(
        "/settings/cloud-storage/form", data={**form, "url": "https://x.org", "user": "$(touch /tmp/SECRET-CMD)"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "The user name is not accepted: it holds shell characters" in html
    assert "SECRET-CMD" not in html and backend.saved is None
    resp = logged_in.post("/settings/cloud-storage/form", data={**form, "url": "http://evil.example.org", "user": "a"})
    assert resp.status_code == 400 and "https://" in resp.get_data(as_text=True) and backend.saved is None
    resp = logged_in.post("/settings/cloud-storage/form", data={**form, "provider": "memory"})
    assert resp.status_code == 400 and "Choose the cloud storage" in resp.get_data(as_text=True)


def test_test_the_connection_shows_each_targets_sentence(logged_in, backend):
    token = csrf_of(logged_in.get("/settings").get_data(as_text=True))
    resp = logged_in.post("/settings/cloud-storage/test", data={"csrf_token": token})
    assert resp.status_code == 302
    assert "rclone:gdrive:pacs answers." in logged_in.get("/settings").get_data(as_text=True)
    backend.tests = [{"target": "cloud", "ok": False, "message": "The rclone configuration ... is refused: Line 3."}]
    resp = logged_in.post("/settings/cloud-storage/test", data={"csrf_token": token})
    assert resp.status_code == 200 and "Test of cloud: The rclone configuration" in resp.get_data(as_text=True)
