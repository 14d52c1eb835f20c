"""Secrets never leave in what is shown or copied offsite."""

from __future__ import annotations

import json

from pacs_backup.clients.runner import mask
from pacs_backup.contracts.redact import mask_url_credentials, redacted_config


def test_passwords_inside_addresses_are_masked_anywhere():
    text = "Fatal: unable to open rest:https://clinic:S3cr3t-pass@backup.example:8000/clinic/ (timeout)"
    assert "S3cr3t-pass" not in mask_url_credentials(text)
    assert "rest:https://clinic:***@backup.example:8000/clinic/" in mask_url_credentials(text)
    assert "S3cr3t-pass" not in mask(text, [])
    assert mask_url_credentials("s3:https://play.example/bucket") == "s3:https://play.example/bucket"


def test_every_secret_like_value_in_orthancs_configuration_is_redacted():
    config = {
        "RegisteredUsers": {"clinic": "pw-users"},
        "OrthancPeers": {
            "cloud": ["https://cloud.example/orthanc/", "peer", "pw-peer"],
            "other": {"Url": "https://x.example/", "Username": "u", "Password": "pw-peer2"},
        },
        "DicomWeb": {"Servers": {"remote": ["https://dw.example/dicom-web/", "dw", "pw-dicomweb"]}},
        "PostgreSQL": {"Password": "pw-pg", "Host": "db"},
        "SomePlugin": {"ApiToken": "pw-token", "Url": "https://u:pw-inurl@h.example/"},
        "HttpPort": 8042,
        "KeepAlive": True,
        "Name": "Clinic",
    }
    text = redacted_config(json.dumps(config))
    for secret in ("pw-users", "pw-peer", "pw-peer2", "pw-dicomweb", "pw-pg", "pw-token", "pw-inurl"):
        assert secret not in text, secret
    kept = json.loads(text)
    assert kept["HttpPort"] == 8042 and kept["Name"] == "Clinic" and kept["KeepAlive"] is True
    assert kept["OrthancPeers"]["cloud"][0] == "https://cloud.example/orthanc/"
