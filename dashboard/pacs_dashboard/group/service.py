"""The group service's parts on the application (group mode): the catalog, the group store, the reconcile.

:func:`install` is called by :func:`pacs_dashboard.create_app` when ``DASHBOARD_MODE=group``; :func:`parts`
gives them to a request (views/group_api.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import Flask, current_app

from .catalog import Catalog
from .reconcile import ReconcileThread
from .settings import GroupServiceSettings
from .store import GroupStore

EXTENSION = "group"


@dataclass(frozen=True)
class GroupParts:
    settings: GroupServiceSettings
    catalog: Catalog
    store: GroupStore | None  # None: no reader key given (no reconcile)
    reconciler: ReconcileThread | None


def install(app: Flask, settings: GroupServiceSettings, start_threads: bool = True) -> GroupParts:
    """Open the catalog (bringing its schema up to date) and start the periodic reconcile when the group
    reader's key is given. Raises CatalogUnavailable or SchemaTooNew."""
    catalog = Catalog(settings.database_url)
    store = GroupStore(settings.store) if settings.store else None
    reconciler = ReconcileThread(catalog, store, settings.reconcile_minutes) if store and start_threads else None
    group = GroupParts(settings, catalog, store, reconciler)
    app.extensions[EXTENSION] = group
    if reconciler:
        reconciler.start()
    return group


def parts() -> GroupParts:
    return cast(GroupParts, current_app.extensions[EXTENSION])
