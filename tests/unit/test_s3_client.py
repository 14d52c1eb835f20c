"""The S3 client signs an upload with the hash its caller already computed (no second hashing pass)."""

from __future__ import annotations

import hashlib

import minio.api
from minio.credentials import Credentials

from pacs_backup.clients.s3_client import KNOWN_SHA256, PAYLOAD_SHA256, PresignedPayloadMinio

BODY = b"\x00" * 1000 + b"DICM"
CREDS = Credentials("access", "secret-for-the-test")


def no_hashing(_body):
    raise AssertionError("the client hashed the body again")


def test_the_client_signs_with_the_hash_it_was_given(monkeypatch):
    client = PresignedPayloadMinio("127.0.0.1:9000", "a", "b", secure=False)
    monkeypatch.setattr(
        minio.api, "sha256_hash", lambda body: no_hashing(body) if body else hashlib.sha256(b"").hexdigest()
    )
    given = hashlib.sha256(BODY).hexdigest()
    headers, _ = client._build_headers("127.0.0.1:9000", {KNOWN_SHA256: given}, BODY, CREDS)
    assert headers[PAYLOAD_SHA256] == given and headers["Content-Length"] == str(len(BODY))
    assert KNOWN_SHA256 not in headers  # ours, never sent


def test_without_a_given_hash_the_client_hashes_as_usual():
    client = PresignedPayloadMinio("127.0.0.1:9000", "a", "b", secure=False)
    headers, _ = client._build_headers("127.0.0.1:9000", {}, BODY, CREDS)
    assert headers[PAYLOAD_SHA256] == hashlib.sha256(BODY).hexdigest()


def test_over_https_nothing_changes():
    client = PresignedPayloadMinio("127.0.0.1:9000", "a", "b", secure=True)
    headers, _ = client._build_headers("127.0.0.1:9000", {KNOWN_SHA256: "x" * 64}, BODY, CREDS)
    assert headers[PAYLOAD_SHA256] == "UNSIGNED-PAYLOAD" and "Content-MD5" in headers


def test_a_header_dict_used_twice_does_not_sign_the_second_body_with_the_first_hash():
    client = PresignedPayloadMinio("127.0.0.1:9000", "a", "b", secure=False)
    headers: dict[str, str] = {}
    client._build_headers("127.0.0.1:9000", headers, BODY, CREDS)
    second = b"another part"
    again, _ = client._build_headers("127.0.0.1:9000", headers, second, CREDS)
    assert again[PAYLOAD_SHA256] == hashlib.sha256(second).hexdigest()
