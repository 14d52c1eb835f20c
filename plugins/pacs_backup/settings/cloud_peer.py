"""The cloud PACS that receives a copy of every instance: its DICOMweb root or its DICOM address."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pacs_backup.contracts.errors import ConfigError

from .bandwidth import UNLIMITED, BandwidthSchedule, parse_schedule
from .env_values import raw, secret


@dataclass(frozen=True)
class DicomPeerSettings:
    """A cloud PACS reached by DICOM (DIMSE): C-STORE to send, C-FIND to verify, C-MOVE to restore."""

    aet: str  # the remote's AE title
    host: str
    port: int
    local_aet: str | None = None  # the AE title this appliance calls with (None: Orthanc's own DicomAet)

    @property
    def shown(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.aet}@{host}:{self.port}"


@dataclass(frozen=True)
class CloudPacsSettings:
    """A remote PACS that receives a copy of every instance: by DICOMweb (``url``) or by DICOM (``dicom``)."""

    url: str | None
    username: str | None
    password: str | None
    dicom: DicomPeerSettings | None = None
    upload: BandwidthSchedule = UNLIMITED  # CLOUD_PACS_UPLOAD_LIMIT (settings/bandwidth.py)

    def __repr__(self) -> str:
        return f"CloudPacsSettings(url={self.url!r}, dicom={self.dicom!r})"


def parse_aet(name: str, value: str) -> str:
    """An AE title: 1-16 printable ASCII characters, no backslash; ConfigError naming ``name`` otherwise."""
    aet = value.strip()
    if not 1 <= len(aet) <= 16 or not all(" " <= c <= "~" and c != "\\" for c in aet):
        raise ConfigError(f"{name}={value!r} is not an AE title; use 1-16 letters, digits or _-. (e.g. CLOUDPACS).")
    return aet


def parse_dicom_peer(name: str, value: str) -> tuple[str, str, int]:
    """``AET@host:port`` (an IPv6 address in brackets: ``AET@[fd00::1]:104``) -> (aet, host, port)."""
    usage = f"{name}={value!r} is not a DICOM peer; use AET@host:port, e.g. CLOUDPACS@pacs.example.net:104."
    aet, at, address = value.strip().rpartition("@")
    if not at:
        raise ConfigError(usage)
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ConfigError(usage)
        port_text = rest[1:]
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon or ":" in host:
            raise ConfigError(usage)
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise ConfigError(usage)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{name}={value!r} has no valid port; use a number from 1 to 65535 after the host.")
    return parse_aet(name, aet), host, int(port_text)


def load_cloud_pacs(env: Mapping[str, str]) -> CloudPacsSettings | None:
    """Either CLOUD_PACS_URL (its DICOMweb root) with CLOUD_PACS_USERNAME, CLOUD_PACS_PASSWORD (or _FILE),
    or CLOUD_PACS_DICOM (``AET@host:port``) with CLOUD_PACS_DICOM_LOCAL_AET (optional). Not both."""
    url, dicom = raw(env, "CLOUD_PACS_URL"), raw(env, "CLOUD_PACS_DICOM")
    upload = parse_schedule("CLOUD_PACS_UPLOAD_LIMIT", raw(env, "CLOUD_PACS_UPLOAD_LIMIT"))
    local_aet = raw(env, "CLOUD_PACS_DICOM_LOCAL_AET")
    if url is not None and dicom is not None:
        raise ConfigError(
            "CLOUD_PACS_URL and CLOUD_PACS_DICOM are both set; set only one: the cloud PACS's DICOMweb root "
            "or its DICOM address (AET@host:port)."
        )
    if dicom is not None:
        for other in ("CLOUD_PACS_USERNAME", "CLOUD_PACS_PASSWORD"):
            if raw(env, other) is not None or raw(env, other + "_FILE") is not None:
                raise ConfigError(f"{other} is set, but DICOM (CLOUD_PACS_DICOM) has no password; leave it empty.")
        aet, host, port = parse_dicom_peer("CLOUD_PACS_DICOM", dicom)
        return CloudPacsSettings(
            url=None,
            username=None,
            password=None,
            dicom=DicomPeerSettings(
                aet, host, port, None if local_aet is None else parse_aet("CLOUD_PACS_DICOM_LOCAL_AET", local_aet)
            ),
            upload=upload,
        )
    if local_aet is not None:
        raise ConfigError("CLOUD_PACS_DICOM_LOCAL_AET is set, but CLOUD_PACS_DICOM is not; set both or neither.")
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"CLOUD_PACS_URL={url!r} must start with https:// (its DICOMweb root).")
    user = raw(env, "CLOUD_PACS_USERNAME")
    return CloudPacsSettings(
        url=url,
        username=user,
        password=secret(env, "CLOUD_PACS_PASSWORD", required=user is not None),
        upload=upload,
    )
