#!/usr/bin/env python3
"""`make run` / `make down` / `make status`: the whole appliance natively on loopback.

Data, logs, pids and generated secrets live under .devstack/ (git-ignored). Secrets are generated
on the first run and kept; nothing has a default password. Idempotent: only what is not running is
started. Ports can be changed with STACK_*_PORT variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devstack

STATE = devstack.ROOT / ".devstack"
PIDS, LOGS, SECRETS = STATE / "pids", STATE / "logs", STATE / "secrets"
ORDER = ("minio", "rest-server", "orthanc", "dashboard")  # start order; stop in reverse


def port(name: str, default: int) -> int:
    raw = os.environ.get(f"STACK_{name}_PORT", str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"STACK_{name}_PORT={raw!r} is not a port number.")
    return int(raw)


PORTS = {"orthanc": port("ORTHANC_HTTP", 8042), "dicom": port("DICOM", 4242), "minio": port("MINIO", 9000),
         "minio-console": port("MINIO_CONSOLE", 9001), "rest-server": port("REST_SERVER", 8000),
         "dashboard": port("DASHBOARD", 8080)}


def secret(name: str, make: str | None = None) -> str:
    """Return the secret kept in .devstack/secrets/<name>, generating it on first use (mode 0600)."""
    SECRETS.mkdir(parents=True, exist_ok=True)
    path = SECRETS / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make or devstack.new_secret())
    return path.read_text().strip()


def running(name: str) -> devstack.Process | None:
    pid_file = PIDS / f"{name}.pid"
    if not pid_file.exists():
        return None
    proc = devstack.Process(name, int(pid_file.read_text()), LOGS / f"{name}.log")
    return proc if proc.alive() else None


def record(proc: devstack.Process) -> None:
    PIDS.mkdir(parents=True, exist_ok=True)
    (PIDS / f"{proc.name}.pid").write_text(str(proc.pid))


def stack_env() -> dict[str, str]:
    return {
        "ORTHANC_URL": f"http://127.0.0.1:{PORTS['orthanc']}",
        "ORTHANC_USERNAME": "clinic",
        "ORTHANC_PASSWORD": secret("orthanc_password"),
        "DICOM_HOST": "127.0.0.1",
        "DICOM_PORT": str(PORTS["dicom"]),
        "DICOM_AET": "PACS",
        "MINIO_ENDPOINT": f"127.0.0.1:{PORTS['minio']}",
        "MINIO_SECURE": "false",
        "MINIO_ACCESS_KEY": secret("minio_access_key", "backup-" + devstack.new_secret(6).lower()),
        "MINIO_SECRET_KEY": secret("minio_secret_key"),
        "MINIO_BUCKET": "pacs-backup",
        "RESTIC_REPOSITORY": f"rest:http://127.0.0.1:{PORTS['rest-server']}/clinic",
        "RESTIC_PASSWORD_FILE": str(SECRETS / "restic_password"),
        "DASHBOARD_URL": f"http://127.0.0.1:{PORTS['dashboard']}",
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": secret("dashboard_password"),
    }


def write_env(env: dict[str, str]) -> Path:
    secret("restic_password")  # make sure the file RESTIC_PASSWORD_FILE names exists
    path = STATE / "stack.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by `make run`. Load with: set -a; . .devstack/stack.env; set +a\n")
        for k, v in env.items():
            f.write(f"{k}={v}\n")
    return path


def minio_root() -> tuple[str, str]:
    """MinIO's root account (user, password): used only to set the store up, never given to the plugin."""
    return (secret("minio_root_user", "root-" + devstack.new_secret(6).lower().replace("_", "-")),
            secret("minio_root_password"))


def setup_store(env: dict[str, str]) -> list[str]:
    """Create (or check) the bucket and the plugin's own account with the root account; idempotent.

    Returns the set-up report's lines (no secrets). Raises StackError with the reason when it fails.
    """
    sys.path.insert(0, str(devstack.ROOT / "plugins"))
    from pacs_backup.errors import BackupError
    from pacs_backup.store_setup import load_setup_settings, provision

    user, password = minio_root()
    try:
        settings = load_setup_settings({**{k: env[k] for k in ("MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_BUCKET",
                                                               "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")},
                                        "MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password})
        return provision(settings, wait_s=60).lines()
    except BackupError as exc:
        raise devstack.StackError(f"setting up the object store failed: {exc} (log {LOGS / 'minio.log'})") from None


def up() -> None:
    # A stack made before the plugin had its own account ran MinIO with the plugin's keys as root; it
    # gets its own root account now, so a MinIO still running with the old one is restarted once.
    migrate = not (SECRETS / "minio_root_user").exists()
    env = stack_env()
    root_user, root_password = minio_root()
    secret("restic_password")
    started = []
    minio = running("minio")
    if minio is not None and migrate:
        print("restarting minio with its own root account (the plugin gets a least-privilege account)")
        minio.stop(60)
    if not running("minio"):
        record(devstack.start_minio(STATE / "minio", PORTS["minio"], PORTS["minio-console"],
                                    root_user, root_password, LOGS / "minio.log"))
        started.append("minio")
    store_report = setup_store(env)  # before Orthanc: the plugin's account may not create the bucket
    if not running("rest-server"):
        record(devstack.start_rest_server(STATE / "offsite", PORTS["rest-server"], LOGS / "rest-server.log"))
        started.append("rest-server")
    if not running("orthanc"):
        backup_env = {k: env[k] for k in ("MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_BUCKET")}
        backup_env.update({"MINIO_ACCESS_KEY_FILE": str(SECRETS / "minio_access_key"),
                           "MINIO_SECRET_KEY_FILE": str(SECRETS / "minio_secret_key"),
                           "RESTIC_REPOSITORY": env["RESTIC_REPOSITORY"],
                           "RESTIC_PASSWORD_FILE": env["RESTIC_PASSWORD_FILE"]})
        settings = devstack.OrthancSettings(work_dir=STATE / "orthanc", http_port=PORTS["orthanc"],
                                            dicom_port=PORTS["dicom"], username=env["ORTHANC_USERNAME"],
                                            password=env["ORTHANC_PASSWORD"], aet=env["DICOM_AET"])
        record(devstack.start_orthanc(settings, backup_env, LOGS / "orthanc.log"))
        started.append("orthanc")
    if not running("dashboard"):
        dash_env = {k: env[k] for k in ("ORTHANC_URL", "ORTHANC_USERNAME", "DASHBOARD_USERNAME")}
        dash_env.update({"ORTHANC_PASSWORD_FILE": str(SECRETS / "orthanc_password"),
                         "DASHBOARD_PASSWORD_FILE": str(SECRETS / "dashboard_password")})
        record(devstack.start_dashboard(PORTS["dashboard"], STATE / "dashboard", dash_env, LOGS / "dashboard.log"))
        started.append("dashboard")
    path = write_env(env)
    sheet = STATE / "recovery-sheet.txt"
    if not sheet.exists():
        subprocess.run([str(devstack.ROOT / "scripts" / "recovery-sheet"), "--clinic", "Development stack",
                        "--output", str(sheet)], env={**os.environ, **env}, check=True, capture_output=True)
    print(f"Started: {', '.join(started) or 'nothing (all running)'}")
    print(f"  Orthanc      {env['ORTHANC_URL']}  (user {env['ORTHANC_USERNAME']}, DICOM {env['DICOM_AET']}@"
          f"{env['DICOM_HOST']}:{env['DICOM_PORT']})")
    print(f"  MinIO        http://{env['MINIO_ENDPOINT']}  bucket {env['MINIO_BUCKET']}  (root account only in "
          f"{SECRETS}/minio_root_*; stack.env has the plugin's own)")
    for line in store_report:
        print(f"               {line}")
    print(f"  Offsite      {env['RESTIC_REPOSITORY']}  (rest-server, append-only)")
    print(f"  Status       {env['ORTHANC_URL']}/backup/status")
    print(f"  Dashboard    {env['DASHBOARD_URL']}  (user {env['DASHBOARD_USERNAME']})")
    print(f"  Settings and secrets: {path}  (logs in {LOGS})")
    print(f"  Recovery sheet: {sheet}  (print it; keep it away from this machine)")


def down() -> None:
    for name in reversed(ORDER):
        proc = running(name)
        if proc:
            proc.stop(60)
            print(f"stopped {name}")
        (PIDS / f"{name}.pid").unlink(missing_ok=True)


def status() -> None:
    for name in ORDER:
        proc = running(name)
        print(f"{name:12s} {f'running (pid {proc.pid})' if proc else 'stopped'}")
    if running("orthanc"):
        sys.path.insert(0, str(devstack.ROOT / "plugins"))
        from pacs_backup.errors import BackupError
        from pacs_backup.orthanc_http import OrthancHttp
        env = stack_env()
        try:
            st = OrthancHttp(env["ORTHANC_URL"], env["ORTHANC_USERNAME"], env["ORTHANC_PASSWORD"]).get_json(
                "/backup/status")
            print(json.dumps(st, indent=2))
        except BackupError as exc:
            print(f"backup status unavailable: {exc}")


if __name__ == "__main__":
    action = {"up": up, "down": down, "status": status}.get(sys.argv[1] if len(sys.argv) > 1 else "up")
    if action is None:
        sys.exit("usage: dev/stack.py up|down|status")
    try:
        action()
    except devstack.StackError as exc:
        sys.exit(f"make run failed: {exc}")
