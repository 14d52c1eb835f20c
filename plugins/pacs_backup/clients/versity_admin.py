"""Versity S3 Gateway's admin API: its accounts, made with the gateway's root account.

The gateway keeps its accounts itself (``--iam-dir``) and answers ``PATCH /create-user``,
``/update-user?access=`` and ``/list-users`` on its S3 port, signed like any S3 request with the root
account (what ``versitygw admin`` sends). What an account may do on a bucket is that bucket's policy,
whose statements name the account (:func:`bucket_policy`).
"""

from __future__ import annotations

import copy
from typing import Any
from xml.sax.saxutils import escape

from minio import Minio
from minio.error import InvalidResponseError, S3Error

# The gateway's region unless started with another (--region); the admin routes are not buckets, so
# the client must not ask them for one.
DEFAULT_REGION = "us-east-1"


class VersityAdmin:
    """The admin API of one Versity S3 Gateway, through a client holding its root account."""

    def __init__(self, root: Minio) -> None:
        self._client = root

    @staticmethod
    def client(endpoint: str, user: str, password: str, secure: bool, region: str | None, http: Any) -> Minio:
        """A root client for :class:`VersityAdmin` (a region is required: see DEFAULT_REGION)."""
        return Minio(endpoint, user, password, secure=secure, region=region or DEFAULT_REGION, http_client=http)

    def _patch(self, route: str, body: bytes = b"", query: dict[str, str] | None = None) -> bytes:
        # The route takes a bucket's place in the path (/create-user): minio signs it as any request.
        params: dict[str, str | list[str] | tuple[str]] = dict(query or {})
        try:
            resp = self._client._execute("PATCH", route, body=body, query_params=params)
        except InvalidResponseError as exc:  # the client takes only 200, 204 and 206 for success
            if getattr(exc, "_code", 0) in (200, 201, 204):
                return b""
            raise
        return bytes(resp.data)

    def is_versity(self) -> bool:
        """Whether the store answers the gateway's admin API with these keys (False: another S3 server)."""
        try:
            data = self._patch("list-users")
        except S3Error:
            return False
        except (InvalidResponseError, ValueError):  # an answer that is not S3's XML: not the gateway
            return False
        return b"ListUserAccountsResult" in data

    def put_user(self, access: str, secret: str) -> bool:
        """Create the account (role ``user``: it cannot create buckets), or set its secret again when it
        exists (the secret may have been rotated). True when it was created. Raises S3Error."""
        body = (
            f"<Account><Access>{escape(access)}</Access><Secret>{escape(secret)}</Secret><Role>user</Role>"
            "<UserID>0</UserID><GroupID>0</GroupID><ProjectID>0</ProjectID></Account>"
        ).encode()
        try:
            self._patch("create-user", body)
            return True
        except S3Error as exc:
            if exc.code != "XAdminUserExists":
                raise
        props = f"<MutableProps><Secret>{escape(secret)}</Secret><Role>user</Role></MutableProps>".encode()
        self._patch("update-user", props, {"access": access})
        return False


def bucket_policy(*grants: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """One bucket policy holding each ``(access key, IAM policy)``'s statements, each naming its account.

    A bucket has one policy, so the plugin's and the dashboard's accounts share it; their statements'
    Sids differ (see store_policy.py)."""
    statements: list[dict[str, Any]] = []
    for access, policy in grants:
        for statement in copy.deepcopy(policy["Statement"]):
            statement["Principal"] = {"AWS": [access]}
            statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}
