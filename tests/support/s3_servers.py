"""The S3 servers the appliance is tested on, each started for real on free loopback ports.

``S3_SERVER`` picks them: a name (``minio``, ``seaweedfs``, ``versitygw``), several separated by commas, or
``all``; unset, the appliance's default only (``make test``). ``make test-s3`` sets ``S3_SERVER=all``.

Each server holds a root account (``access_key`` / ``secret_key``) used only to set buckets up, as the
store set-up step does, and makes the plugin's least-privilege account its own way:
- MinIO: its admin API (pacs_backup.cli.store_setup, as `make run` and Compose do);
- SeaweedFS: its IAM, through ``weed shell`` (s3.policy -put, s3.user.create, s3.policy.attach);
- Versity S3 Gateway: its admin API (create-user, role user) and a bucket policy, made by the set-up step
  (pacs_backup.cli.store_setup, as `make run` and Compose do); ``grant`` does the same with ``versitygw admin``.
In every case the account's rights are the policy of pacs_backup.settings.store_policy.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

from minio import Minio
from minio.commonconfig import ENABLED
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

import devstack
from pacs_backup.settings.store_policy import plugin_policy, policy_name
from tests.support.common import wait_until
from tests.support.servers import MinioServer

# The appliance's default object store (docs/object-stores.md says why).
DEFAULT = "versitygw"
SERVERS = ("minio", "seaweedfs", "versitygw")


def selected() -> list[str]:
    """The servers ``S3_SERVER`` names (see the module's docstring); the default when unset."""
    raw = os.environ.get("S3_SERVER", "").strip().lower()
    if not raw:
        return [DEFAULT]
    if raw == "all":
        return list(SERVERS)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        raise ValueError(f"S3_SERVER={raw!r}: unknown {', '.join(unknown)}; use {', '.join(SERVERS)} or all")
    return names


def _new_key(prefix: str) -> str:
    return prefix + devstack.new_secret(6).lower().replace("_", "x").replace("-", "x")


def _rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in KiB (ps RSS)."""
    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], text=True, capture_output=True)
    return sum(int(x) for x in out.stdout.split())


class S3Server:
    """A started S3 server: a root account, the plugin's accounts, buckets with and without object lock."""

    name = ""
    # What its object lock enforces against the plugin's key and the root account (docs/object-stores.md).
    enforces = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = devstack.free_port()
        self.access_key, self.secret_key = _new_key("root"), devstack.new_secret()
        self.proc: devstack.Process | None = None
        self.log = base / f"{self.name}.log"
        self.started_rss_kb = 0  # resident memory right after it answered (ps RSS), set by start_server

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(30)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Minio:
        """A client with the root account, or with the keys given."""
        return Minio(self.endpoint, access_key or self.access_key, secret_key or self.secret_key, secure=False)

    def rss_kb(self) -> int:
        assert self.proc is not None
        return _rss_kb(self.proc.pid)

    def _wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if not self.proc.alive():
                raise AssertionError(f"{self.name} exited during start; log {self.log}")
            try:
                self.client().list_buckets()
                return True
            except Exception:  # not answering yet, whatever the error
                return False

        wait_until(ready, timeout, f"{self.name} to answer S3 requests on {self.endpoint}", 0.3)

    def locked_bucket(self, bucket: str, lock_mode: str = "GOVERNANCE", lock_days: int = 1) -> None:
        """Create ``bucket`` with versioning, object lock and a default retention, with the root account
        (what the store set-up step does on any S3 server)."""
        c = self.client()
        c.make_bucket(bucket, object_lock=True)
        if c.get_bucket_versioning(bucket).status != ENABLED:
            c.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
        c.set_object_lock_config(bucket, ObjectLockConfig(lock_mode, lock_days, DAYS))

    def plain_bucket(self, bucket: str) -> None:
        """Create ``bucket`` without object lock (and without versioning), as a hand-made bucket may be."""
        self.client().make_bucket(bucket, object_lock=False)

    def plugin_account(self, bucket: str, lock_mode: str = "GOVERNANCE", lock_days: int = 1) -> dict[str, str]:
        """A locked ``bucket`` and the plugin's own account for it; returns the plugin's MINIO_* settings."""
        self.locked_bucket(bucket, lock_mode, lock_days)
        access, secret = _new_key("plugin"), devstack.new_secret()
        self.grant(bucket, access, secret)
        return self.plugin_env(bucket, access, secret, lock_mode, lock_days)

    def grant(self, bucket: str, access: str, secret: str) -> None:
        """Make an account with keys ``access`` / ``secret`` holding the plugin's policy on ``bucket``."""
        raise NotImplementedError

    def plugin_env(self, bucket: str, access: str, secret: str, mode: str = "GOVERNANCE", days: int = 1) -> dict:
        return {
            "MINIO_ENDPOINT": self.endpoint,
            "MINIO_ACCESS_KEY": access,
            "MINIO_SECRET_KEY": secret,
            "MINIO_BUCKET": bucket,
            "BACKUP_LOCK_MODE": mode,
            "BACKUP_LOCK_DAYS": str(days),
        }

    def root_env(self, bucket: str) -> dict[str, str]:
        """The MINIO_* settings with the root account (scripts reading the bucket, like MinioServer.env)."""
        return {
            "MINIO_ENDPOINT": self.endpoint,
            "MINIO_ACCESS_KEY": self.access_key,
            "MINIO_SECRET_KEY": self.secret_key,
            "MINIO_BUCKET": bucket,
        }


class MinioS3(S3Server):
    """MinIO (community edition, archived): the accounts through its admin API, as the appliance does."""

    name = "minio"
    enforces = "GOVERNANCE and COMPLIANCE; IAM policies with Deny; the admin API makes the accounts"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self._minio = MinioServer(base)
        self.port, self.access_key, self.secret_key = self._minio.port, self._minio.access_key, self._minio.secret_key

    def start(self) -> None:
        self._minio.start()
        self.proc = self._minio.proc

    def plugin_account(self, bucket: str, lock_mode: str = "GOVERNANCE", lock_days: int = 1) -> dict[str, str]:
        from tests.support.store_account import plugin_account

        return plugin_account(self._minio, bucket, lock_mode, lock_days)[0]


class SeaweedS3(S3Server):
    """SeaweedFS (`weed mini`: master, volume, filer and S3 gateway in one process), built into .tools/bin."""

    name = "seaweedfs"
    enforces = "GOVERNANCE and COMPLIANCE in the S3 gateway; IAM policies with Deny (weed shell makes accounts)"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.ports = {k: devstack.free_port() for k in ("master", "master.grpc", "volume", "volume.grpc")}
        self.ports.update({k: devstack.free_port() for k in ("filer", "filer.grpc", "s3.grpc", "admin", "admin.grpc")})

    def start(self) -> None:
        exe = devstack.require_program(devstack.TOOLS_BIN / "weed")
        data = self.base / "seaweedfs-data"
        data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        argv = [
            exe,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",  # its admin server still runs: on free ports too, and no legacy port
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin.grpc']}",
            "-admin.port.legacy=0",
        ]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(data),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        self.proc = devstack.spawn("seaweedfs", argv, self.log, env)
        self._wait_ready()

    def shell(self, commands: str) -> str:
        """Run ``weed shell`` commands against this server's master and filer; return their output."""
        exe = devstack.require_program(devstack.TOOLS_BIN / "weed")
        done = subprocess.run(
            [
                exe,
                "shell",
                f"-master=127.0.0.1:{self.ports['master']}.{self.ports['master.grpc']}",
                f"-filer=127.0.0.1:{self.ports['filer']}.{self.ports['filer.grpc']}",
            ],
            input=commands + "\nexit\n",
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.base)},
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "error" not in out.lower(), f"weed shell failed:\n{out}"
        return out

    def grant(self, bucket: str, access: str, secret: str) -> None:
        policy = self.base / f"{policy_name(bucket)}.json"
        policy.write_text(json.dumps(plugin_policy(bucket)))
        self.shell(
            f"s3.policy -put -name={policy_name(bucket)} -file={policy}\n"
            f"s3.user.create -name {access} -access_key {access} -secret_key {secret}\n"
            f"s3.policy.attach -policy {policy_name(bucket)} -user {access}"
        )
        wait_until(lambda: _answers(self.client(access, secret), bucket), 30, f"{self.name} to know account {access}")


class VersityS3(S3Server):
    """Versity S3 Gateway over a plain directory (posix backend, versions kept in a directory of their own)."""

    name = "versitygw"
    enforces = "GOVERNANCE and COMPLIANCE; bucket policies with Deny; the admin API makes the accounts"

    def start(self) -> None:
        exe = devstack.require_program(devstack.TOOLS_BIN / "versitygw")
        data, versions, iam = (self.base / "versitygw-data", self.base / "versitygw-versions", self.base / "iam")
        for d in (data, versions, iam):
            d.mkdir(parents=True, exist_ok=True)
        argv = [
            exe,
            "--port",
            f"127.0.0.1:{self.port}",
            "--iam-dir",
            str(iam),
            "--quiet",
            "posix",
            "--versioning-dir",
            str(versions),
            str(data),
        ]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.base),
            "ROOT_ACCESS_KEY": self.access_key,
            "ROOT_SECRET_KEY": self.secret_key,
        }
        self.proc = devstack.spawn("versitygw", argv, self.log, env)
        self._wait_ready()

    def admin(self, *args: str) -> str:
        """Run ``versitygw admin`` with the root account against this gateway; return its output."""
        exe = devstack.require_program(devstack.TOOLS_BIN / "versitygw")
        done = subprocess.run(
            [exe, "admin", *args],
            text=True,
            capture_output=True,
            timeout=60,
            check=False,
            env={
                "PATH": os.environ.get("PATH", ""),
                "ADMIN_ACCESS_KEY": self.access_key,
                "ADMIN_SECRET_KEY": self.secret_key,
                "ADMIN_ENDPOINT_URL": f"http://{self.endpoint}",
            },
        )
        assert done.returncode == 0, f"versitygw admin {args[0]} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def plugin_account(self, bucket: str, lock_mode: str = "GOVERNANCE", lock_days: int = 1) -> dict[str, str]:
        from tests.support.store_account import plugin_account

        return plugin_account(self, bucket, lock_mode, lock_days)[0]

    def grant(self, bucket: str, access: str, secret: str) -> None:
        self.admin("create-user", "--access", access, "--secret", secret, "--role", "user")
        policy = plugin_policy(bucket)
        for statement in policy["Statement"]:  # a bucket policy names whom it binds
            statement["Principal"] = {"AWS": [access]}
        self.client().set_bucket_policy(bucket, json.dumps(policy))
        wait_until(lambda: _answers(self.client(access, secret), bucket), 30, f"{self.name} to know account {access}")


def _answers(client: Minio, bucket: str) -> bool:
    """Whether ``client``'s keys may list ``bucket`` (the account is known to the server)."""
    try:
        list(client.list_objects(bucket, prefix="none/"))
        return True
    except Exception:  # not yet
        return False


KINDS: dict[str, type[S3Server]] = {"minio": MinioS3, "seaweedfs": SeaweedS3, "versitygw": VersityS3}


def start_server(name: str, base: Path) -> S3Server:
    """Start the server called ``name`` with its data under ``base``; the caller stops it."""
    server = KINDS[name](base)
    try:
        server.start()
        server.started_rss_kb = server.rss_kb()
    except BaseException:
        server.stop()  # never left running when it did not come up
        raise
    return server


def put_rate(server: S3Server, bucket: str, count: int = 200, size: int = 256 * 1024) -> float:
    """Objects per second of ``count`` sequential PUTs of ``size`` bytes with the root account (a figure)."""
    import time

    client = server.client()
    body = os.urandom(size)
    start = time.monotonic()
    for i in range(count):
        client.put_object(bucket, f"rate/{i:05d}", io.BytesIO(body), size)
    return count / (time.monotonic() - start)
