"""Issue 23 item 2 in the dashboard: a picture of a damaged backup copy is a 422 with a sentence, never a 500
or a broken PNG; when every preview slot is taken the answer is 503 with Retry-After (from the bucket while
the PACS is down, and passed on from the plugin while it answers)."""

from __future__ import annotations

import contextlib
import io

import pytest

from pacs_backup.clients.orthanc_http import ErrorAnswer, RequestRefused
from pacs_backup.dicom.preview import BadImage, PreviewsBusy, preview_slot
from pacs_backup.settings.limits import Limits
from pacs_backup.settings.store import StoreSettings
from pacs_dashboard.backend import Backend
from pacs_dashboard.bucket import BucketReader
from pacs_dashboard.config import load_dashboard_settings
from tests.support.dashboard_fakes import BELLA
from tests.support.dicomraw import instance

SETTINGS = StoreSettings("127.0.0.1:1", False, "reader", "secret", "pacs-backup", None, "", "GOVERNANCE", 30)


class CopyStore:
    """A bucket holding one copy of Bella's study."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def list_keys(self, prefix: str):
        yield prefix + "1.2.3/4.5.6.dcm"

    def get(self, key: str) -> bytes:
        return self.data

    @contextlib.contextmanager
    def reading(self, key: str):
        yield io.BytesIO(self.data).read


def picture(client):
    return client.get(f"/studies/{BELLA['study_uid']}/backup-picture.png?n=1")


def from_the_bucket(app, data: bytes, limits: Limits) -> None:
    app.extensions["bucket"] = BucketReader(SETTINGS, CopyStore(data), limits)  # type: ignore[arg-type]
    app.extensions["keeper"].mark_down("Orthanc does not answer.")


def test_security_a_damaged_copy_is_a_422_with_a_sentence_while_the_pacs_is_down(app, logged_in):
    short_rgb = instance("explicit-little", rows=100, cols=100, samples=3, pixel_bytes=100 * 100 * 3 - 600)
    from_the_bucket(app, short_rgb, Limits())
    resp = picture(logged_in)
    assert resp.status_code == 422, resp.status_code
    assert "shorter than the image it describes" in resp.get_data(as_text=True)
    from_the_bucket(app, instance("explicit-little", rows=100, cols=100, samples=3), Limits())
    ok = picture(logged_in)
    assert ok.status_code == 200 and ok.data.startswith(b"\x89PNG")


def test_security_previews_beyond_the_slots_get_503_with_retry_after_while_the_pacs_is_down(app, logged_in):
    limits = Limits(preview_slots=1, preview_wait_s=0.01)
    from_the_bucket(app, instance("explicit-little", rows=64, cols=64), limits)
    with preview_slot(limits):  # another preview is being drawn
        resp = picture(logged_in)
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1
    assert picture(logged_in).status_code == 200


def test_security_the_plugins_422_and_503_are_passed_on(app, logged_in, backend, monkeypatch):
    for refusal, code in (
        (BadImage("The image data in this file is shorter than the image."), 422),
        (PreviewsBusy(), 503),
    ):

        def refuse(uid, position, size=256, refusal=refusal):
            raise refusal

        monkeypatch.setattr(backend, "backup_preview", refuse)
        resp = picture(logged_in)
        assert resp.status_code == code and str(refusal) in resp.get_data(as_text=True)
        assert app.extensions["keeper"].known_down(60) is None  # a busy plugin is not a PACS that is down


class Answering:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get(self, uri: str) -> bytes:
        raise self.exc


def test_the_plugins_answers_become_the_preview_errors(tmp_path):
    settings = load_dashboard_settings({"ORTHANC_URL": "http://127.0.0.1:1", "DASHBOARD_DATA_DIR": str(tmp_path)})
    backend = Backend(settings)
    backend.http = Answering(RequestRefused(422, "Orthanc refused (HTTP 422)", "The image is damaged."))  # type: ignore[assignment]
    with pytest.raises(BadImage, match="The image is damaged"):
        backend.backup_preview(BELLA["study_uid"], 1)
    busy = ErrorAnswer(503, "Orthanc answered HTTP 503 to GET /backup/studies/1/preview: busy", "busy")
    backend.http = Answering(busy)  # type: ignore[assignment]
    with pytest.raises(PreviewsBusy):
        backend.backup_preview(BELLA["study_uid"], 1)
