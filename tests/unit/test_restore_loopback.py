"""The plugin's restores send images over Orthanc's own HTTP port when it can (in process, Orthanc's Python plugin
runs them one at a time), with an account Orthanc accepts, and through the SDK whenever the port fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pacs_backup.api.access import load_access
from pacs_backup.api.loopback import RECHECK_S, LoopbackFirst, loopback_client
from pacs_backup.clients.orthanc_http import ErrorAnswer, RequestRefused
from pacs_backup.contracts.errors import SourceError


def client(config_json: str, env: dict[str, str]) -> Any:
    """The port's client as the plugin makes it: from the role map it gives the routes."""
    return loopback_client(config_json, load_access(env, config_json).roles)


def config(**kw: Any) -> str:
    return json.dumps({"HttpPort": 8042, "AuthenticationEnabled": True, **kw})


def test_restore_loopback_uses_the_account_orthanc_accepts_and_only_plain_http():
    one = client(config(RegisteredUsers={"clinic": "s3cret"}), {})
    assert one is not None and one.url == "http://127.0.0.1:8042"
    assert one._headers["Authorization"] == "Basic Y2xpbmljOnMzY3JldA=="  # clinic:s3cret
    several = {"viewer": "v", "dashboard": "d", "tech": "t"}
    chosen = client(config(RegisteredUsers=several), {"BACKUP_ROLES": "dashboard:service,viewer:staff"})
    assert chosen is not None and chosen._headers["Authorization"] == "Basic ZGFzaGJvYXJkOmQ="  # dashboard:d
    # Several users and none given a role that may restore: the port is not used with a guessed account.
    assert client(config(RegisteredUsers=several), {"BACKUP_ROLES": "viewer:staff"}) is None
    assert client(config(RegisteredUsers=several), {}) is None
    # Orthanc asks no password (this machine only): no account needed.
    open_ = client(config(AuthenticationEnabled=False, RemoteAccessAllowed=False), {})
    assert open_ is not None and "Authorization" not in open_._headers
    # TLS on the port, no HTTP server, no port named, a configuration that cannot be read: the SDK only.
    assert client(config(SslEnabled=True, RegisteredUsers={"clinic": "x"}), {}) is None
    assert client(config(HttpServerEnabled=False, RegisteredUsers={"clinic": "x"}), {}) is None
    assert client(json.dumps({"RegisteredUsers": {"clinic": "x"}}), {}) is None
    assert client("{not json", {}) is None


class Recorder:
    def __init__(self, name: str, fail: Exception | None = None) -> None:
        self.name, self.fail, self.calls = name, fail, 0

    def upload(self, dicom: bytes) -> dict[str, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return {"ID": self.name}

    def get_json(self, uri: str) -> Any:
        return self.upload(b"")


def test_restore_loopback_falls_back_to_the_sdk_when_the_port_fails_and_tries_it_again_later():
    now = [0.0]
    port, sdk = (
        Recorder("port", SourceError("Orthanc at http://127.0.0.1:8042 cannot be reached (refused).")),
        Recorder("sdk"),
    )
    target = LoopbackFirst(port, sdk, clock=lambda: now[0])  # type: ignore[arg-type]
    assert target.upload(b"x") == {"ID": "sdk"} and port.calls == 1
    assert target.get_json("/instances/1") == {"ID": "sdk"} and port.calls == 1  # not tried again at once
    now[0] += RECHECK_S
    port.fail = None
    assert target.upload(b"x") == {"ID": "port"} and port.calls == 2
    # A refused account (401) is the port's problem: the SDK takes the image.
    port.fail = ErrorAnswer(401, "Orthanc answered 401")
    assert target.upload(b"x") == {"ID": "sdk"}


def test_restore_loopback_passes_on_orthancs_own_refusal_of_a_file():
    port, sdk = Recorder("port", RequestRefused(400, "Orthanc refused the file: not DICOM")), Recorder("sdk")
    target = LoopbackFirst(port, sdk)  # type: ignore[arg-type]
    with pytest.raises(RequestRefused):
        target.upload(b"not dicom")
    assert sdk.calls == 0
