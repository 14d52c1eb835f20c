"""The dashboard's pages and its JSON API, a blueprint per area. Each blueprint's name starts its endpoints'
names (``studies.detail``), which roles.py lists with the roles allowed to use them."""

from __future__ import annotations

from flask import Blueprint, Flask

from . import (
    accounts,
    alerts,
    audit,
    auth,
    copies,
    drills,
    drives,
    exports,
    referrals,
    reports,
    restores,
    settings,
    shares,
    status,
    studies,
    viewer,
)

BLUEPRINTS: tuple[Blueprint, ...] = (
    auth.bp,  # login (with its 2-step code), logout, one's password, the one-time setup
    status.bp,  # the health page, its JSON, /metrics and /healthz
    studies.bp,  # find a study, see it, restore it, follow the restore
    viewer.bp,  # the study viewer (dwv) reading any copy through DICOMweb, and its files
    copies.bp,  # every copy as a read-only DICOMweb service: /copies and /copies/<source>/dicom-web/
    exports.bp,  # a study from any copy as a ZIP: DICOM files with a DICOMDIR, pictures, a README
    referrals.bp,  # sending a study to a referring clinic, and how far each request got
    restores.bp,  # restores waiting for the PACS; checking a study in the PACS against its backup
    drills.bp,  # restore tests and snapshots: history, run now
    drives.bp,  # backup drives: their drives, preparing a new one
    reports.bp,  # the staff guide and the monthly restore-test report
    audit.bp,  # the audit log and its export
    settings.bp,  # targets and cloud storage
    alerts.bp,  # alert destinations, the summary e-mail, the heartbeat
    accounts.bp,  # users and roles, one's own account and 2-step login
    shares.bp,  # share links of one study: make, list, revoke; the recipient's page at /s/<token>
)


def register(app: Flask) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    if "group" in app.extensions:  # group mode only (DASHBOARD_MODE=group): elsewhere /group/api/ is a 404
        from . import group_api  # the clinics' catalog rows and heartbeats, the group's status

        app.register_blueprint(group_api.bp)
        from . import group_deliveries_api, group_pages  # the group's pages; deliveries pulled by the clinics

        app.register_blueprint(group_pages.bp)
        app.register_blueprint(group_deliveries_api.bp)
