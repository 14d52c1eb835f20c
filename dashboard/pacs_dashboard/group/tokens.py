"""Clinic tokens: how a clinic's appliance proves itself to the group service's API.

A token is 256 random bits, shown once when made (``python -m pacs_dashboard group add-clinic <id>``) and
kept only as its sha256 in ``clinics``. Making a token again for the same clinic replaces the old one;
revoking leaves the clinic and its studies in the catalog but refuses its token.
"""

from __future__ import annotations

import hashlib
import secrets

from pacs_backup.contracts.errors import BackupError

from .catalog import Catalog
from .settings import CLINIC_ID_RULE, is_clinic_id

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 128


class UnknownClinic(BackupError):
    """The clinic id is not valid, or not in the catalog."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_clinic(catalog: Catalog, clinic: str, label: str = "") -> str:
    """Register ``clinic`` (or give it a new token, refusing the old one); returns the token, shown once."""
    if not is_clinic_id(clinic):
        raise UnknownClinic(f"{clinic[:40]!r} is not a clinic id: {CLINIC_ID_RULE}.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with catalog.connection() as conn, conn.transaction():
        conn.execute(
            "INSERT INTO clinics (id, label, token_sha256) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "token_sha256 = excluded.token_sha256, revoked_at = NULL, "
            "label = CASE WHEN excluded.label = '' THEN clinics.label ELSE excluded.label END",
            (clinic, " ".join(label.split())[:100], token_hash(token)),
        )
    return token


def revoke_clinic(catalog: Catalog, clinic: str) -> None:
    """Refuse the clinic's token from now on (its studies stay in the catalog)."""
    with catalog.connection() as conn, conn.transaction():
        cur = conn.execute("UPDATE clinics SET token_sha256 = NULL, revoked_at = now() WHERE id = %s", (clinic,))
        if cur.rowcount == 0:
            raise UnknownClinic(f"There is no clinic {clinic[:40]!r} in the group catalog.")


def clinic_of(catalog: Catalog, authorization: str) -> str | None:
    """The clinic whose token is in an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    with catalog.connection() as conn:
        row = conn.execute(
            "SELECT id FROM clinics WHERE token_sha256 = %s AND revoked_at IS NULL", (token_hash(token),)
        ).fetchone()
    return str(row[0]) if row else None
