"""The retention rule on the dashboard: the settings page shows it, a study's page the day its copies may go."""

from __future__ import annotations

from pacs_backup.settings.retention import RetentionRule, retention_doc
from tests.dashboard.test_getting_back import monitor_of
from tests.support.dashboard_fakes import BELLA, STUDY


def page(client, path: str) -> str:
    resp = client.get(path)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_retention_study_page_shows_the_earliest_day_its_copies_may_be_deleted(logged_in, backend):
    backend.status_value["retention"] = retention_doc(RetentionRule(7, "england-wales", "a law"), "GOVERNANCE", 30)
    html = page(logged_in, f"/studies/{STUDY['study_uid']}")  # studied 27 Nov 2026
    assert 'id="kept-until"' in html and "Kept until 27 Nov 2033" in html
    assert "even if it is deleted in the PACS" in html
    assert "the object store itself refuses to delete them before then" in html

    settings = page(logged_in, "/settings")
    assert "Every copy keeps each study for 7 years from its study date (england-wales: a law)." in settings
    assert "The object store itself refuses to delete a copy before then" in settings  # each copy's own lock


def test_retention_without_object_lock_the_pages_do_not_say_the_store_enforces_it(logged_in, backend):
    backend.status_value["retention"] = retention_doc(RetentionRule(7), "OFF", 30)
    html = page(logged_in, f"/studies/{STUDY['study_uid']}")
    assert "Kept until 27 Nov 2033" in html and "object store itself" not in html
    assert "no object lock (BACKUP_LOCK_MODE=OFF)" in page(logged_in, "/settings")


def test_retention_study_page_while_the_pacs_is_down_uses_the_last_rule_it_gave(app, logged_in, backend):
    backend.status_value["retention"] = retention_doc(RetentionRule(3), "GOVERNANCE", 36500)
    assert "Kept until 27 Nov 2029" in page(logged_in, f"/studies/{STUDY['study_uid']}")
    monitor_of(app, backend).tick()  # the dashboard's mirror of the backups' study list
    backend.down = True
    html = page(logged_in, f"/studies/{BELLA['study_uid']}")  # from the dashboard's mirror
    assert "Kept until 26 Nov 2029" in html


def test_retention_unknown_rule_shows_no_date(logged_in, backend):
    backend.status_value.pop("retention", None)
    html = page(logged_in, f"/studies/{STUDY['study_uid']}")
    assert 'id="kept-until"' not in html
    assert "has not said its retention rule yet" in page(logged_in, "/settings")


def test_retention_settings_page_says_nothing_of_the_lock_when_it_covers_the_rule(logged_in, backend):
    # Each copy is locked until its study may go, so any lock length covers the rule.
    backend.status_value["retention"] = retention_doc(RetentionRule(7), "COMPLIANCE", 30)
    settings = page(logged_in, "/settings")
    assert 'id="retention-rule"' in settings and "the default of 7 years" not in settings
    assert 'id="retention-lock"' not in settings
    backend.status_value["retention"] = retention_doc(RetentionRule(7), "OFF", 2557)
    assert "The copies have no object lock" in page(logged_in, "/settings")
