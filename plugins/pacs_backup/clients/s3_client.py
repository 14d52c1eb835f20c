"""The MinIO client, told each upload's SHA-256 instead of hashing the bytes a second time.

Over plain HTTP (the store on the same box) an S3 request is signed with the SHA-256 of its body, and
the store recomputes it and refuses the upload when the two differ. Every copy already has that hash
(it is written into the manifest and the object's metadata), so computing it again in the client only
costs CPU the two cores need for Orthanc and the store: about 8% of the copier's time, measured by
profiling a backlog drain. Over HTTPS the client sends no payload hash at all, and nothing changes.

The store still checks every byte against the hash: a body that does not match what the caller hashed
is refused (``tests/integration/test_replication.py`` checks this on a real store).
"""

from __future__ import annotations

from typing import Any

from minio import Minio

PAYLOAD_SHA256 = "x-amz-content-sha256"
# The caller's hash travels under a name of ours that is taken out before sending: minio writes the
# header above into the caller's dict, so a dict used twice must not pass an old hash as a new one.
KNOWN_SHA256 = "x-pacs-known-sha256"


class PresignedPayloadMinio(Minio):
    """A :class:`Minio` that signs with the SHA-256 a request carries under ``KNOWN_SHA256``.

    minio 7.2 builds every request's headers in ``_build_headers`` (pinned in pyproject.toml; the unit
    test ``test_the_client_signs_with_the_hash_it_was_given`` fails if that changes).
    """

    def _build_headers(
        self, host: str, headers: Any = None, body: bytes | None = None, creds: Any = None
    ) -> tuple[Any, Any]:
        known = headers.pop(KNOWN_SHA256, None) if headers else None
        if known is None or not body or creds is None or self._base_url.is_https:
            return super()._build_headers(host, headers, body, creds)
        built, date = super()._build_headers(host, headers, b"", creds)  # an empty body: nothing to hash
        built["Content-Length"] = str(len(body))
        built[PAYLOAD_SHA256] = known
        return built, date
