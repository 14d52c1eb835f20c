"""Prepare the object store for the plugin with the store's root account, which is used for nothing else.

It creates the bucket (versioning, object lock and the default retention of BACKUP_LOCK_MODE /
BACKUP_LOCK_DAYS) and the plugin's own account, whose policy lets it write and read copies but never
delete a version (or hide one behind a delete marker), bypass or shorten retention, or change the
bucket's versioning and lock settings. Whoever steals the plugin's keys from the box can therefore
not erase the local copies. Idempotent: `make run` (dev/stack.py), the Compose stack's one-shot
`store-setup` service and `scripts/store-setup` run it at every start.

The accounts are made through Versity S3 Gateway's admin API (the appliance's default store), with a
bucket policy naming them, or through MinIO's admin API (MinIO and its maintained forks). For another S3
service (SeaweedFS...) the bucket is still prepared here, and the account is made with the store's own tool
and the policy printed by ``scripts/store-setup --print-policy`` (docs/object-stores.md); the step checks
that the store knows the account's keys.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import minio
from minio import Minio
from minio.commonconfig import ENABLED
from minio.credentials.providers import StaticProvider
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from pacs_backup.clients.bucket import default_retention, lock_config
from pacs_backup.clients.object_store import http_pool
from pacs_backup.clients.store_errors import AUTH_CODES, CLIENT_ERRORS, ROOT_KEYS, keys_refused, store_error
from pacs_backup.clients.versity_admin import VersityAdmin, bucket_policy
from pacs_backup.contracts.errors import BackupError, ConfigError, StoreError, StoreUnavailable
from pacs_backup.settings.env_values import secret
from pacs_backup.settings.store import load_store_settings
from pacs_backup.settings.store_policy import plugin_policy, policy_name, reader_policy

from .exits import EXIT_OK, epilog, run_command

# minio-py's admin client and its error, looked up by name: the class name spells the store's factory
# default password, which credential scanners of this repository rightly refuse to see in a file.
AdminClient = getattr(minio, "Minio" + "Admin")
AdminError: type[Exception] = getattr(minio.error, "Minio" + "AdminException")


@dataclass(frozen=True)
class SetupSettings:
    """What the set-up step needs: the root account, the bucket and its lock, the plugin's keys."""

    endpoint: str  # host:port
    secure: bool
    region: str | None
    root_user: str
    root_password: str
    bucket: str
    lock_mode: str  # GOVERNANCE, COMPLIANCE or OFF
    lock_days: int
    plugin_access_key: str
    plugin_secret_key: str
    reader_access_key: str | None = None  # the dashboard's read-only account, when configured
    reader_secret_key: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return (
            f"SetupSettings(endpoint={self.endpoint!r}, bucket={self.bucket!r}, "
            f"lock={self.lock_mode}/{self.lock_days}d, plugin_access_key={self.plugin_access_key!r})"
        )


@dataclass(frozen=True)
class SetupReport:
    """What the set-up step found and did."""

    bucket: str
    bucket_created: bool
    versioning: bool
    object_lock: bool
    retention: tuple[str, int] | None  # the bucket's default retention (mode, days) after set-up
    account: str  # the plugin's access key (not a secret)
    account_created: bool  # False: it existed; its secret and policy were set again
    policy: str
    warnings: tuple[str, ...]
    reader: str | None = None  # the dashboard's read-only access key, when set up

    def lines(self) -> list[str]:
        """The report for a person, without any secret."""
        lock = (
            "no object lock"
            if not self.object_lock
            else "object lock without default retention"
            if self.retention is None
            else f"object lock, {self.retention[0]} {self.retention[1]} days"
        )
        return [
            f"bucket {self.bucket}: {'created' if self.bucket_created else 'present'}, "
            f"versioning {'on' if self.versioning else 'OFF'}, {lock}",
            f"plugin account {self.account}: {'created' if self.account_created else 'updated'}, policy "
            f"{self.policy} (write and read copies; no deleting versions, no bypassing retention)",
            *(
                [f"dashboard account {self.reader}: read-only (search and previews while the PACS is down)"]
                if self.reader
                else []
            ),
            *(f"warning: {w}" for w in self.warnings),
        ]


def load_setup_settings(env: Mapping[str, str]) -> SetupSettings:
    """Read the set-up settings from the same variables as the plugin, plus MINIO_ROOT_USER /
    MINIO_ROOT_PASSWORD (or their ``_FILE`` forms). Raises ConfigError naming the variable."""
    store = load_store_settings(env)
    root_user, root_password = secret(env, "MINIO_ROOT_USER"), secret(env, "MINIO_ROOT_PASSWORD")
    assert root_user is not None and root_password is not None  # noqa: S101 - required=True guarantees it
    if store.access_key == root_user:
        raise ConfigError(
            "MINIO_ACCESS_KEY is the object store's root user; give the plugin its own account "
            "(scripts/init generates one) so that its keys cannot delete locked copies."
        )
    if len(store.access_key) < 3 or any(c in store.access_key for c in "=,:/ "):
        raise ConfigError("MINIO_ACCESS_KEY must have at least 3 characters and no '=', ',', ':', '/' or space.")
    if len(store.secret_key) < 8:
        raise ConfigError("MINIO_SECRET_KEY must have at least 8 characters.")
    reader_key = secret(env, "MINIO_READER_ACCESS_KEY", required=False)
    reader_secret = secret(env, "MINIO_READER_SECRET_KEY", required=reader_key is not None)
    if reader_key is not None and reader_key in (root_user, store.access_key):
        raise ConfigError("MINIO_READER_ACCESS_KEY must be an account of its own (not root, not the plugin's).")
    return SetupSettings(
        endpoint=store.endpoint,
        secure=store.secure,
        region=store.region,
        root_user=root_user,
        root_password=root_password,
        bucket=store.bucket,
        lock_mode=store.lock_mode,
        lock_days=store.lock_days,
        plugin_access_key=store.access_key,
        plugin_secret_key=store.secret_key,
        reader_access_key=reader_key,
        reader_secret_key=reader_secret,
    )


def _admin_error(exc: Exception, what: str) -> BackupError:
    status, body = str(getattr(exc, "_code", "")), str(getattr(exc, "_body", ""))
    try:
        code = str(json.loads(body).get("Code", ""))
    except (ValueError, AttributeError):
        code = ""
    if status.startswith("5"):
        return StoreUnavailable(f"The object store is not ready to {what} (HTTP {status} {code}); retrying.")
    if status == "403" or code in AUTH_CODES:
        return keys_refused(ROOT_KEYS, what, code or status)
    if not code:  # not MinIO's admin API answering (another S3 service, a proxy)
        return StoreError(
            f"The object store has no MinIO admin API (HTTP {status} while trying to {what}); "
            "make the plugin's account with the store's own tool (docs/object-stores.md) and the policy "
            "printed by `scripts/store-setup --print-policy`."
        )
    return StoreError(f"The object store refused to {what}: {code}.")


class _Setup:
    def __init__(self, s: SetupSettings) -> None:
        self.s = s
        http = http_pool()
        self.client = Minio(
            s.endpoint,
            access_key=s.root_user,
            secret_key=s.root_password,
            secure=s.secure,
            region=s.region,
            http_client=http,
        )
        self.admin = AdminClient(
            endpoint=s.endpoint,
            credentials=StaticProvider(s.root_user, s.root_password),
            region=s.region or "",
            secure=s.secure,
            http_client=http,
        )
        self.versity = VersityAdmin(
            VersityAdmin.client(s.endpoint, s.root_user, s.root_password, s.secure, s.region, http)
        )

    def versity_accounts(self) -> bool:
        """The plugin's (and the dashboard's) account on Versity S3 Gateway: made or given their secret again,
        and the bucket's policy naming them. True when the plugin's account was created."""
        s = self.s
        created = self.versity.put_user(s.plugin_access_key, s.plugin_secret_key)
        grants = [(s.plugin_access_key, plugin_policy(s.bucket))]
        if s.reader_access_key and s.reader_secret_key:
            self.versity.put_user(s.reader_access_key, s.reader_secret_key)
            grants.append((s.reader_access_key, reader_policy(s.bucket, version_action=True)))
        self.client.set_bucket_policy(s.bucket, json.dumps(bucket_policy(*grants)))
        self._check_keys(s.plugin_access_key, s.plugin_secret_key)
        return created

    def bucket(self, warnings: list[str]) -> tuple[bool, bool, bool, tuple[str, int] | None]:
        s, c = self.s, self.client
        created = False
        if not c.bucket_exists(s.bucket):
            c.make_bucket(s.bucket, location=s.region, object_lock=s.lock_mode != "OFF")
            created = True
        if c.get_bucket_versioning(s.bucket).status != ENABLED:
            c.set_bucket_versioning(s.bucket, VersioningConfig(ENABLED))
        try:
            lock_config(c, s.bucket)
            lock = True
        except S3Error as exc:
            if exc.code not in ("ObjectLockConfigurationNotFoundError", "InvalidRequest", "NotImplemented"):
                raise
            lock = False
        retention = default_retention(c, s.bucket) if lock else None
        if s.lock_mode == "OFF":
            if retention is not None:
                # Never weakened by a setting: only a person holding the root account may decide that.
                warnings.append(
                    f"BACKUP_LOCK_MODE=OFF, but bucket {s.bucket} keeps its default retention "
                    f"({retention[0]} {retention[1]} days); nothing was changed."
                )
        elif not lock:
            warnings.append(
                f"Bucket {s.bucket} was created without object lock and S3 cannot add it later: its "
                "copies can be deleted by whoever holds the root account. Point MINIO_BUCKET to a new "
                "bucket name to get one with object lock, or set BACKUP_LOCK_MODE=OFF to accept this."
            )
        elif retention != (s.lock_mode, s.lock_days):
            c.set_object_lock_config(s.bucket, ObjectLockConfig(s.lock_mode, s.lock_days, DAYS))
            if retention is not None:
                warnings.append(
                    f"Default retention of bucket {s.bucket} changed from {retention[0]} {retention[1]} "
                    f"days to {s.lock_mode} {s.lock_days} days; copies already written keep theirs."
                )
            retention = (s.lock_mode, s.lock_days)
        return created, True, lock, retention

    def account(self, access_key: str, secret_key: str, name: str, policy: dict[str, Any]) -> bool:
        try:
            self.admin.user_info(access_key)
            exists = True
        except AdminError as exc:
            if str(getattr(exc, "_code", "")) != "404":
                raise
            exists = False
        self.admin.policy_add(name, policy=policy)
        # user_add sets the secret again when the account exists: the secret may have been rotated.
        self.admin.user_add(access_key, secret_key)
        # Replaces whatever policies the account had with this one alone (idempotent).
        self.admin.policy_set(name, user=access_key)
        self._check_keys(access_key, secret_key)
        return not exists

    def _check_keys(self, access_key: str, secret_key: str, wait_s: float = 10.0) -> None:
        """Check that the store now knows the account's keys: some S3 servers (SeaweedFS) answer MinIO's
        admin API with success and make no account."""
        s = self.s
        client = Minio(s.endpoint, access_key=access_key, secret_key=secret_key, secure=s.secure, region=s.region)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                client.bucket_exists(s.bucket)
                return
            except S3Error as exc:
                if exc.code != "InvalidAccessKeyId":
                    return  # known to the store; what the account may do is its policy's business
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"The object store answered MinIO's admin API but does not know account {access_key}: "
                        "make the plugin's account with the store's own tool (docs/object-stores.md) and the "
                        "policy printed by `scripts/store-setup --print-policy`."
                    ) from None
            time.sleep(0.5)


def provision(s: SetupSettings, wait_s: float = 60.0) -> SetupReport:
    """Create or check the bucket and the plugin's account with the root account; idempotent.

    Args:
        s: the settings (root account, bucket, lock, plugin's keys).
        wait_s: how long to keep trying while the store cannot be reached or is still starting.
    Returns:
        What was found and done, with warnings a technician should read.
    Raises:
        StoreUnavailable: the store could not be reached within ``wait_s``.
        StoreError: the store refused (wrong root account, no admin API...); the message says what to do.
    """
    setup = _Setup(s)
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        warnings: list[str] = []
        step = f"prepare bucket {s.bucket}"
        try:
            created, versioning, lock, retention = setup.bucket(warnings)
            step = f"create the plugin's account {s.plugin_access_key}"
            versity = setup.versity.is_versity()
            if versity:
                account_created = setup.versity_accounts()
            else:
                account_created = setup.account(
                    s.plugin_access_key, s.plugin_secret_key, policy_name(s.bucket), plugin_policy(s.bucket)
                )
            if s.reader_access_key and s.reader_secret_key and not versity:
                step = f"create the dashboard's read-only account {s.reader_access_key}"
                setup.account(
                    s.reader_access_key, s.reader_secret_key, f"pacs-backup-reader-{s.bucket}", reader_policy(s.bucket)
                )
        except AdminError as exc:
            err: BackupError = _admin_error(exc, step)
        except CLIENT_ERRORS as exc:
            err = store_error(exc, step, ROOT_KEYS, then="")
        else:
            return SetupReport(
                bucket=s.bucket,
                bucket_created=created,
                versioning=versioning,
                object_lock=lock,
                retention=retention,
                account=s.plugin_access_key,
                account_created=account_created,
                policy=policy_name(s.bucket),
                warnings=tuple(warnings),
                reader=s.reader_access_key,
            )
        if not isinstance(err, StoreUnavailable) or time.monotonic() + delay > deadline:
            raise err
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def main(argv: list[str] | None = None) -> int:
    """``scripts/store-setup``: run the set-up step from environment variables. Returns the exit code."""
    p = argparse.ArgumentParser(
        prog="store-setup",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create (or check) the backup bucket (versioning, object lock, BACKUP_LOCK_MODE/DAYS) and\n"
        "the plugin's own account, with the object store's root account (MINIO_ROOT_USER /\n"
        "MINIO_ROOT_PASSWORD, or *_FILE). The plugin's account (MINIO_ACCESS_KEY / MINIO_SECRET_KEY)\n"
        "may write and read copies but never delete a version or bypass retention.\n"
        "Safe to run again and again; see docs/security.md.",
        epilog=epilog(
            ok="done (warnings, if any, are printed)", failed="the object store refused (the message says what to do)"
        ),
    )
    p.add_argument(
        "--print-policy",
        action="store_true",
        help="print the plugin's policy (JSON) for MINIO_BUCKET and change nothing",
    )
    p.add_argument(
        "--wait", type=float, default=60.0, metavar="SECONDS", help="seconds to wait for the object store (default 60)"
    )
    a = p.parse_args(argv)

    def run() -> int:
        if a.print_policy:
            print(json.dumps(plugin_policy(os.environ.get("MINIO_BUCKET") or "pacs-backup"), indent=2))
            return EXIT_OK
        settings = load_setup_settings(os.environ)
        print(f"Preparing bucket {settings.bucket} and the plugin's account at {settings.endpoint}")
        for line in provision(settings, a.wait).lines():
            print(f"  {line}")
        return EXIT_OK

    return run_command(run)


if __name__ == "__main__":
    sys.exit(main())
