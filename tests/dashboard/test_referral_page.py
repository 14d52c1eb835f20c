"""Sending a study to a referring clinic from its page: who may, what is sent, how far it got (stand-in backend)."""

from __future__ import annotations

from pacs_dashboard import shares
from tests.dashboard.test_accounts import audit_details, user_with_role
from tests.support.dashboard_fakes import csrf_of

UID = "1.2.3"  # DOE^JANE in the stand-in's catalog


def test_export_to_a_referring_clinic_from_the_study_page(app, backend, logged_in):
    page = logged_in.get(f"/studies/{UID}").get_data(as_text=True)
    assert "Send to a referring clinic" not in page  # no clinic set up: nothing offered

    backend.referral_peers = [{"name": "hillside", "label": "Hillside Referral Hospital"}]
    page = logged_in.get(f"/studies/{UID}").get_data(as_text=True)
    assert "Send to a referring clinic" in page and "Hillside Referral Hospital" in page
    resp = logged_in.post(f"/studies/{UID}/send", data={"csrf_token": csrf_of(page), "peer": "hillside"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/studies/{UID}#send-study")
    assert [(r["peer"], r["requested_by"]) for r in backend.referral_requests] == [("hillside", "admin")]
    page = logged_in.get(f"/studies/{UID}").get_data(as_text=True)
    assert "on its way (3 images)" in page and "Sending: 0 of 3 images delivered." in page
    assert ("study_sent", f"study {UID} to hillside (3 images)") in audit_details(app)

    backend.referral_requests[0].update(state="verified", verified=3)
    assert "Delivered: the clinic holds all 3 images." in logged_in.get(f"/studies/{UID}").get_data(as_text=True)

    wrong = logged_in.post(f"/studies/{UID}/send", data={"csrf_token": csrf_of(page), "peer": "nowhere"})
    assert wrong.status_code == 404 and "no referring clinic" in wrong.get_data(as_text=True)


def test_export_to_a_referring_clinic_needs_the_sharing_permission(app, backend):
    backend.referral_peers = [{"name": "hillside", "label": "Hillside Referral Hospital"}]
    staff = user_with_role(app, "anna", "staff")
    page = staff.get(f"/studies/{UID}").get_data(as_text=True)
    assert "Send to a referring clinic" not in page
    refused = staff.post(f"/studies/{UID}/send", data={"csrf_token": csrf_of(page), "peer": "hillside"})
    assert refused.status_code == 403 and "May share studies" in refused.get_data(as_text=True)
    assert backend.referral_requests == []

    shares.set_may_share(app.extensions["db"], "anna", True)
    page = staff.get(f"/studies/{UID}").get_data(as_text=True)
    assert staff.post(f"/studies/{UID}/send", data={"csrf_token": csrf_of(page), "peer": "hillside"}).status_code == 302

    monitor = user_with_role(app, "nagios", "monitor")
    token = csrf_of(monitor.get("/account").get_data(as_text=True))  # a valid form: only the role may refuse it
    assert monitor.post(f"/studies/{UID}/send", data={"peer": "hillside", "csrf_token": token}).status_code == 403
