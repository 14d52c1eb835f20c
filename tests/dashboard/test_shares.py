"""Share links of one study: made by staff who may share, opened without an account, ended by expiry or
revocation, throttled per address, every open kept and shown (Flask test client, stand-in backend)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time

import pytest

from pacs_backup.contracts.errors import ConfigError, NotFound
from pacs_backup.sources.base import CopyInstance, CopyStudy, SourceUnavailable, StudyMatch
from pacs_dashboard import shares
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.shares import ShareStore, load_share_settings
from pacs_dashboard.view_cache import ByteLru
from tests.dashboard.test_accounts import user_with_role
from tests.support.dashboard_fakes import PASSWORD, csrf_of
from tests.support.dicomgen import make_instance

UID, OTHER_UID = "1.2.3", "1.2.840.99.7"  # DOE^JANE and Smith^Bella in the stand-in's catalog
LINK = re.compile(r'id="share-url"[^>]*>(http://localhost/s/([A-Za-z0-9_-]+))</textarea>')


class FakeCopies:
    """Two studies held by every copy, as deps.copies() reads them; ``pacs_up = False`` makes the PACS's copy
    unreadable. Records (source, study) of every listing and read."""

    def __init__(self) -> None:
        self.files: dict[str, list[tuple[str, str, bytes]]] = {}
        for uid, name in ((UID, "DOE^JANE"), (OTHER_UID, "Smith^Bella")):
            series = uid + ".1"
            self.files[uid] = [
                (
                    series,
                    f"{series}.{n}",
                    make_instance(uid, series, f"{series}.{n}", rows=8, cols=8, patient_name=name),
                )
                for n in (1, 2)
            ]
        self.headers = ByteLru(1024 * 1024)
        self.pacs_up = True
        self.asked: list[tuple[str, str]] = []

    def _check(self, source: str, study_uid: str) -> None:
        self.asked.append((source, study_uid))
        if source == "pacs" and not self.pacs_up:
            raise SourceUnavailable("The PACS is not answering right now.")

    def sources(self, study_uid=None):
        return []

    def studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        self._check(source, match.study_uid)
        return [
            CopyStudy(
                study_uid=uid,
                patient_id="P",
                patient_name="X",
                study_date="20261127",
                description="",
                accession="",
                modalities="CT",
                series=1,
                instances=len(files),
            )
            for uid, files in self.files.items()
            if not match.study_uid or match.study_uid == uid
        ]

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        self._check(source, study_uid)
        if study_uid not in self.files:
            raise NotFound("This copy holds no such study.")
        return [
            CopyInstance(study_uid=study_uid, series_uid=se, sop_uid=sop, size=len(data), sha256="", ref=sop)
            for se, sop, data in self.files[study_uid]
        ]

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        self._check(source, study_uid)
        return next(data for _, sop, data in self.files[study_uid] if sop == sop_uid)


@pytest.fixture
def copies(app):
    found = FakeCopies()
    app.extensions["copies"] = found
    return found


def make_link(client, uid=UID, **form):
    page = client.get(f"/studies/{uid}").get_data(as_text=True)
    resp = client.post(f"/studies/{uid}/share", data={"csrf_token": csrf_of(page), **form})
    return resp


def made(client, uid=UID, **form):
    resp = make_link(client, uid, **form)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    url, token = LINK.search(resp.get_data(as_text=True)).groups()
    return url, token, resp.get_data(as_text=True)


def store(app) -> ShareStore:
    return ShareStore(app.extensions["db"])


def test_share_link_token_is_256_random_bits_and_only_its_hash_is_kept(app, logged_in):
    url, token, page = made(logged_in)
    assert len(token) == 43 and shares.is_token(token)  # secrets.token_urlsafe(32)
    assert "DOE" not in url and UID not in url  # nothing about the patient in the address
    _, second, _ = made(logged_in)
    assert second != token
    db = app.extensions["db"]
    kept = [r[0] for r in db.query("SELECT token_hash FROM shares")]
    assert hashlib.sha256(token.encode()).hexdigest() in kept
    dump = "\n".join(str(row) for t in ("shares", "share_opens", "audit") for row in db.query(f"SELECT * FROM {t}"))  # noqa: S608
    assert token not in dump and second not in dump
    assert "shown only this once" in page


def test_share_expiry_defaults_to_7_days_and_is_capped_at_90(app, logged_in):
    before = time.time()
    made(logged_in)
    made(logged_in, days="90")
    links = sorted(store(app).listing(), key=lambda row: row.link.id)
    assert abs(links[0].link.expires_at - before - 7 * 86400) < 60
    assert abs(links[1].link.expires_at - before - 90 * 86400) < 60
    refused = make_link(logged_in, days="91")
    assert refused.status_code == 400 and "from 0.01 to 90" in refused.get_data(as_text=True)
    assert load_share_settings({"DASHBOARD_SHARE_DAYS": "3", "DASHBOARD_SHARE_MAX_DAYS": "30"}) == (
        shares.ShareSettings(3.0, 30.0)
    )
    with pytest.raises(ConfigError, match="DASHBOARD_SHARE_DAYS"):
        load_share_settings({"DASHBOARD_SHARE_DAYS": "40", "DASHBOARD_SHARE_MAX_DAYS": "30"})


def test_share_settings_come_from_the_environment(tmp_path):
    env = {"ORTHANC_URL": "http://127.0.0.1:1", "DASHBOARD_DATA_DIR": str(tmp_path), "DASHBOARD_SHARE_DAYS": "2"}
    assert load_dashboard_settings(env).shares == shares.ShareSettings(2.0, 90.0)
    env["DASHBOARD_SHARE_URL"] = "https://pacs.clinic.example/"
    assert load_dashboard_settings(env).shares.base_url == "https://pacs.clinic.example"
    with pytest.raises(ConfigError, match="DASHBOARD_SHARE_URL"):
        load_share_settings({"DASHBOARD_SHARE_URL": "pacs.clinic.example"})


def test_share_link_starts_with_the_configured_address(app, logged_in):
    app.extensions["settings"] = dataclasses.replace(
        app.extensions["settings"], shares=shares.ShareSettings(base_url="https://pacs.clinic.example")
    )
    page = make_link(logged_in).get_data(as_text=True)
    assert re.search(r'id="share-url"[^>]*>https://pacs\.clinic\.example/s/[A-Za-z0-9_-]{43}<', page)


def test_share_expired_and_revoked_links_answer_410_with_a_plain_page(app, logged_in, copies):
    _, expired, _ = made(logged_in)
    _, revoked, _ = made(logged_in)
    s = store(app)
    s.set_expiry(s.find(expired).id, time.time() - 1)
    visitor = app.test_client()
    resp = visitor.get(f"/s/{expired}")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 410 and "This link has expired" in body and resp.mimetype == "text/html"
    assert "Log out" not in body and "/studies" not in body and "<form" not in body
    listed = logged_in.get("/shares").get_data(as_text=True)
    link_id = s.find(revoked).id
    assert logged_in.post(f"/shares/{link_id}/revoke", data={"csrf_token": csrf_of(listed)}).status_code == 302
    resp = visitor.get(f"/s/{revoked}")
    assert resp.status_code == 410 and "withdrawn this link" in resp.get_data(as_text=True)
    assert visitor.get(f"/s/{revoked}/dicom-web/studies").status_code == 410
    assert copies.asked == []
    listed = logged_in.get("/shares").get_data(as_text=True)
    assert f'data-share="{link_id}" data-state="revoked"' in listed and "revoked" in listed


def test_share_unknown_tokens_all_get_the_same_404(app, logged_in):
    made(logged_in)
    visitor = app.test_client()
    answers = set()
    for i, unknown in enumerate(("A" * 43, "x", "1.2.3", "%2e%2e", "a" * 200, "B" * 42 + "_")):
        resp = visitor.get(f"/s/{unknown}", environ_base={"REMOTE_ADDR": f"10.9.0.{i}"})
        assert resp.status_code == 404
        answers.add(resp.get_data())
    assert len(answers) == 1
    assert b"There is no such link" in answers.pop()


def test_share_failed_tokens_from_one_address_are_throttled(app, logged_in):
    _, token, _ = made(logged_in)
    visitor = app.test_client()
    attacker = {"REMOTE_ADDR": "198.51.100.4"}
    for n in range(shares.MAX_FAILURES_PER_ADDRESS):
        assert visitor.get(f"/s/{'C' * 42}{n % 10}", environ_base=attacker).status_code == 404
    throttled = visitor.get(f"/s/{token}", environ_base=attacker)  # even a real link, from that address
    assert throttled.status_code == 429 and "Try again in" in throttled.get_data(as_text=True)
    assert "Retry-After" in throttled.headers
    assert visitor.get(f"/s/{token}", environ_base={"REMOTE_ADDR": "198.51.100.5"}).status_code == 200


def test_share_wrong_pins_are_refused_then_throttled(app, logged_in):
    _, token, page = made(logged_in, pin="4711")
    assert 'id="share-pin">4711<' in page
    visitor = app.test_client()
    form = visitor.get(f"/s/{token}")
    assert form.status_code == 200 and 'name="pin"' in form.get_data(as_text=True)
    for _ in range(shares.MAX_WRONG_PINS_PER_LINK):
        wrong = visitor.post(f"/s/{token}", data={"pin": "0000"})
        assert wrong.status_code == 401 and "That PIN is wrong" in wrong.get_data(as_text=True)
    assert visitor.post(f"/s/{token}", data={"pin": "4711"}).status_code == 429  # even the right one, for now
    other = app.test_client()
    ok = other.post(f"/s/{token}", data={"pin": "4711"}, environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert ok.status_code == 303
    assert [a for a, _ in _audit(app)].count("share_pin_failed") == shares.MAX_WRONG_PINS_PER_LINK


def _audit(app):
    return [(r[3], r[4]) for r in app.extensions["db"].audit_rows()]


def test_share_a_pin_guessed_at_from_many_addresses_withdraws_the_link(app, logged_in):
    """A leaked link tried from many addresses (5 wrong PINs each is allowed per address) gets MAX_WRONG_PINS_ALL
    guesses in all: then the link is withdrawn for good, even for the right PIN."""
    _, token, _ = made(logged_in, pin="4711")
    visitor = app.test_client()
    for n in range(shares.MAX_WRONG_PINS_ALL - 1):
        wrong = visitor.post(f"/s/{token}", data={"pin": f"{n:04d}"}, environ_base={"REMOTE_ADDR": f"203.0.113.{n}"})
        assert wrong.status_code == 401
    last = visitor.post(f"/s/{token}", data={"pin": "9999"}, environ_base={"REMOTE_ADDR": "198.51.100.77"})
    assert last.status_code == 410 and "withdrawn" in last.get_data(as_text=True)
    right = visitor.post(f"/s/{token}", data={"pin": "4711"}, environ_base={"REMOTE_ADDR": "198.51.100.78"})
    assert right.status_code == 410
    assert store(app).find(token).revoked_at is not None


def test_share_pin_unlocks_the_link_with_a_strict_cookie_of_its_own(app, logged_in, copies):
    _, token, page = made(logged_in, make_pin="yes")
    pin = re.search(r'id="share-pin">(\d{6})<', page).group(1)  # shown once, beside the link, not in it
    assert store(app).find(token).has_pin
    visitor = app.test_client()
    assert visitor.get(f"/s/{token}/dicom-web/studies/{UID}/series").status_code == 403  # PIN first
    good = visitor.post(f"/s/{token}", data={"pin": pin})
    assert good.status_code == 303 and good.headers["Location"].endswith(f"/s/{token}")
    cookies = good.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("pacs_share_pin=")
    assert "HttpOnly" in cookies[0] and "SameSite=Strict" in cookies[0] and f"Path=/s/{token}" in cookies[0]
    assert visitor.get(f"/s/{token}").status_code == 200
    assert visitor.get(f"/s/{token}/dicom-web/studies/{UID}/series").status_code == 200
    cross = app.test_client().post(f"/s/{token}", data={"pin": "1"}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 400


def test_share_token_reaches_only_its_own_study(app, logged_in, copies):
    _, token, _ = made(logged_in)
    visitor = app.test_client()
    base = f"/s/{token}/dicom-web"
    series = visitor.get(f"{base}/studies/{UID}/series")
    assert series.status_code == 200 and series.get_json()[0]["0020000E"]["Value"] == [UID + ".1"]
    listed = visitor.get(f"{base}/studies")
    assert [s["0020000D"]["Value"] for s in listed.get_json()] == [[UID]]  # the search lists that study only
    assert visitor.get(f"{base}/studies?StudyInstanceUID={OTHER_UID}").get_json() == []
    for path in (
        f"studies/{OTHER_UID}/series",
        f"studies/{OTHER_UID}/metadata",
        f"studies/{OTHER_UID}",
        f"studies/{OTHER_UID}/series/{OTHER_UID}.1/instances/{OTHER_UID}.1.1",
        f"studies/{OTHER_UID}/series/{OTHER_UID}.1/instances/{OTHER_UID}.1.1/frames/1",
        f"studies/{UID}/../{OTHER_UID}/series",
        f"studies/{UID}%2F..%2F{OTHER_UID}/series",
    ):
        resp = visitor.get(f"{base}/{path}")
        assert resp.status_code in (400, 404), path
        assert b"Smith" not in resp.data
    assert {study for _, study in copies.asked} <= {UID, ""}  # the other study was never even read


def test_share_reads_the_bucket_while_the_pacs_is_down(app, logged_in, backend, copies):
    _, token, _ = made(logged_in)
    visitor = app.test_client()
    assert visitor.get(f"/s/{token}/dicom-web/studies/{UID}/metadata").status_code == 200
    assert copies.asked[-1][0] == "pacs"
    copies.pacs_up = False  # the PACS stops answering before the dashboard notices
    assert visitor.get(f"/s/{token}/dicom-web/studies/{UID}/series").status_code == 200
    assert copies.asked[-1][0] == "bucket"
    app.extensions["keeper"].mark_down("The PACS is not answering right now.")
    backend.down = True
    copies.asked.clear()
    assert visitor.get(f"/s/{token}").status_code == 200
    assert visitor.get(f"/s/{token}/dicom-web/studies/{UID}/metadata").status_code == 200
    assert {source for source, _ in copies.asked} == {"bucket"}  # not even asked


def test_share_staff_without_the_permission_get_403_and_monitors_never_share(app, logged_in):
    staff = user_with_role(app, "anna", "staff")
    study = staff.get(f"/studies/{UID}").get_data(as_text=True)
    assert 'id="share-study"' not in study and 'href="/shares"' not in study
    refused = staff.post(f"/studies/{UID}/share", data={"csrf_token": csrf_of(study)})
    assert refused.status_code == 403 and "may not share studies" in refused.get_data(as_text=True)
    assert staff.get("/shares").status_code == 403
    assert store(app).listing() == []
    # The administrator allows it on the Users page.
    edit = logged_in.get("/users/edit?name=anna").get_data(as_text=True)
    assert 'name="may_share"' in edit
    resp = logged_in.post("/users/sharing", data={"csrf_token": csrf_of(edit), "username": "anna", "may_share": "yes"})
    assert resp.status_code == 302
    assert ("user_sharing_changed", "anna may share studies") in _audit(app)
    study = staff.get(f"/studies/{UID}").get_data(as_text=True)
    assert 'id="share-study"' in study and 'href="/shares"' in study
    made(staff)
    assert staff.get("/shares").status_code == 200
    # A monitor account may not, whatever its account says.
    monitor = user_with_role(app, "nagios", "monitor")
    shares.set_may_share(app.extensions["db"], "nagios", True)
    token = csrf_of(monitor.get("/account").get_data(as_text=True))
    assert monitor.post(f"/studies/{UID}/share", data={"csrf_token": token}).status_code == 403
    assert monitor.get("/shares").status_code == 403
    assert len(store(app).listing()) == 1


def test_share_every_open_is_kept_and_shown_beside_the_link(app, logged_in, copies):
    _, token, _ = made(logged_in)
    visitor = app.test_client()
    for ip, agent in (("203.0.113.9", "OwnerPhone/1.0"), ("203.0.113.10", "ReferringVet/2.0")):
        resp = visitor.get(f"/s/{token}", environ_base={"REMOTE_ADDR": ip}, headers={"User-Agent": agent})
        assert resp.status_code == 200
    assert visitor.get(f"/s/{token}/dicom-web/studies/{UID}/series").status_code == 200  # reads are not opens
    listed = logged_in.get("/shares").get_data(as_text=True)
    row = listed[listed.index(f'data-share="{store(app).find(token).id}"') :]
    assert "203.0.113.9" in row and "OwnerPhone/1.0" in row and "ReferringVet/2.0" in row
    assert re.search(r'class="opens">2<', row)
    assert "DOE, JANE" in row and "admin" in row and "Revoke" in row


def test_share_recipient_page_shows_that_study_only_and_sets_no_dashboard_cookie(app, logged_in, copies):
    _, token, _ = made(logged_in)
    visitor = app.test_client()
    resp = visitor.get(f"/s/{token}")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "DOE" in body and "Smith" not in body and "Bella" not in body and OTHER_UID not in body
    assert 'href="/studies' not in body and "Log out" not in body and "csrf_token" not in body
    assert resp.headers.getlist("Set-Cookie") == []
    assert resp.headers["Referrer-Policy"] == "same-origin" and resp.headers["Cache-Control"] == "no-store"
    assert f"/s/{token}/dicom-web" in body


def test_share_make_refuses_a_bad_pin_and_an_unknown_study(app, logged_in, backend):
    assert make_link(logged_in, pin="12").status_code == 400
    backend.missing.add("9.9.9")
    page = logged_in.get(f"/studies/{UID}").get_data(as_text=True)
    resp = logged_in.post("/studies/9.9.9/share", data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 404
    assert store(app).listing() == []


def test_share_admin_login_is_not_needed_and_password_is_not_the_pin(app, logged_in):
    _, token, _ = made(logged_in, pin="abcd1234")
    resp = app.test_client().post(f"/s/{token}", data={"pin": PASSWORD})
    assert resp.status_code == 401


def test_share_of_a_study_held_only_by_an_offsite_snapshot_is_served_from_it(app, logged_in, copies):
    """Deleted from the PACS and not in the bucket (e.g. older than the bucket's history): the newest snapshot
    holding it serves the recipient, still limited to that study."""
    _, token, _ = made(logged_in)

    def sources(study_uid=None):
        return [{"name": "offsite-1a2b3c4d", "kind": "offsite", "label": "snapshot", "available": True, "reason": ""}]

    def only_in_snapshot(source: str, study_uid: str) -> None:
        copies.asked.append((source, study_uid))
        if source in ("pacs", "bucket"):
            raise NotFound("This copy holds no such study.")

    copies.sources = sources
    copies._check = only_in_snapshot
    visitor = app.test_client()
    assert visitor.get(f"/s/{token}").status_code == 200
    series = visitor.get(f"/s/{token}/dicom-web/studies/{UID}/series")
    assert series.status_code == 200 and len(series.get_json()) == 1
    assert ("offsite-1a2b3c4d", UID) in copies.asked
    assert visitor.get(f"/s/{token}/dicom-web/studies/{OTHER_UID}/series").status_code == 404
