"""Referring clinics a study can be sent to on request: each by DICOMweb (STOW-RS) or by DICOM (C-STORE).

``REFERRAL_PEERS=hillside,eastvets`` names them; each reads ``<NAME>_PEER_URL`` (its DICOMweb root) with
``<NAME>_PEER_USERNAME`` and ``<NAME>_PEER_PASSWORD`` (or ``_FILE``), or ``<NAME>_PEER_DICOM``
(``AET@host:port``), and ``<NAME>_PEER_LABEL``, the name staff see ("Hillside Referral Hospital").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pacs_backup.contracts.errors import ConfigError

from .cloud_peer import DicomPeerSettings, parse_dicom_peer
from .env_values import raw, secret

_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class ReferralPeer:
    """One referring clinic: its DICOMweb root (``url``) or its DICOM address (``dicom``)."""

    name: str
    label: str
    url: str | None
    username: str | None
    password: str | None
    dicom: DicomPeerSettings | None = None

    @property
    def shown(self) -> str:
        """Where it is, as shown to people (no password)."""
        return self.dicom.shown if self.dicom is not None else str(self.url)

    def __repr__(self) -> str:
        return f"ReferralPeer(name={self.name!r}, url={self.url!r}, dicom={self.dicom!r})"


def _peer(env: Mapping[str, str], name: str) -> ReferralPeer:
    prefix = name.upper().replace("-", "_") + "_PEER_"
    url, dicom = raw(env, prefix + "URL"), raw(env, prefix + "DICOM")
    label = " ".join((raw(env, prefix + "LABEL") or name).split())[:80]
    if (url is None) == (dicom is None):
        raise ConfigError(
            f"REFERRAL_PEERS names {name!r}: set exactly one of {prefix}URL (its DICOMweb root) "
            f"or {prefix}DICOM (AET@host:port)."
        )
    if dicom is not None:
        aet, host, port = parse_dicom_peer(prefix + "DICOM", dicom)
        return ReferralPeer(name, label, None, None, None, DicomPeerSettings(aet, host, port))
    assert url is not None  # noqa: S101 - one of the two is set (checked above)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{prefix}URL={url!r} must start with https:// (the clinic's DICOMweb root).")
    user = raw(env, prefix + "USERNAME")
    return ReferralPeer(name, label, url, user, secret(env, prefix + "PASSWORD", required=user is not None))


def load_referral_peers(env: Mapping[str, str]) -> tuple[ReferralPeer, ...]:
    """The referring clinics of ``REFERRAL_PEERS`` (none when unset); ConfigError with a sentence otherwise."""
    names = [n.strip().lower() for n in (raw(env, "REFERRAL_PEERS") or "").split(",") if n.strip()]
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"REFERRAL_PEERS has an invalid name {name[:40]!r}; use a short name of letters, digits and -."
            )
    if len(set(names)) != len(names):
        raise ConfigError("REFERRAL_PEERS names a clinic twice; name each once.")
    return tuple(_peer(env, n) for n in names)
