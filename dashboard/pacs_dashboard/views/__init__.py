"""The dashboard's pages and its JSON API, a blueprint per area. Each blueprint's name starts its endpoints'
names (``studies.detail``), which roles.py lists with the roles allowed to use them."""

from __future__ import annotations

from flask import Blueprint, Flask

from . import accounts, alerts, audit, auth, drills, drives, reports, restores, settings, status, studies

BLUEPRINTS: tuple[Blueprint, ...] = (
    auth.bp,  # login (with its 2-step code), logout, one's password, the one-time setup
    status.bp,  # the health page, its JSON, /metrics and /healthz
    studies.bp,  # find a study, see it, restore it, follow the restore
    restores.bp,  # restores waiting for the PACS; checking a study in the PACS against its backup
    drills.bp,  # restore tests and snapshots: history, run now
    drives.bp,  # backup drives: their drives, preparing a new one
    reports.bp,  # the staff guide and the monthly restore-test report
    audit.bp,  # the audit log and its export
    settings.bp,  # targets and cloud storage
    alerts.bp,  # alert destinations, the summary e-mail, the heartbeat
    accounts.bp,  # users and roles, one's own account and 2-step login
)


def register(app: Flask) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
