#!/usr/bin/env python3
"""`make run` / `make down` / `make status`: the whole appliance natively on loopback.

Data, logs, pids and generated secrets live under .devstack/ (git-ignored). Secrets are generated
on the first run and kept; nothing has a default password. Idempotent: only what is not running is
started (and Orthanc again when its configuration changed). Settings come from the environment, else
from `.env` (as with Compose): STACK_*_PORT move the ports; STACK_BIND=0.0.0.0 opens Orthanc and the
dashboard to the network (default 127.0.0.1: this machine only); DICOM_MODALITIES lists the devices
allowed to store. STACK_STATE_DIR / STACK_ENV_FILE put the state and `.env` elsewhere (tests).

The object store is Versity S3 Gateway (OBJECT_STORE=versitygw, the default) or MinIO (OBJECT_STORE=minio);
a stack whose copies are already in MinIO stays on MinIO until OBJECT_STORE says otherwise. Whichever runs,
its pid file keeps its historic name, `minio.pid`, and the STACK_MINIO_PORT setting moves its S3 port.

`.devstack/pids/<service>.pid` holds each service's pid. For orthanc that is the pid of its supervisor
(dev/supervise.py), which restarts Orthanc when it crashes and stops it when stopped itself; Orthanc's
own current pid is in `.devstack/pids/orthanc.child.pid`, its restarts in `.devstack/logs/supervise-orthanc.log`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devstack

STATE = Path(os.environ.get("STACK_STATE_DIR") or devstack.ROOT / ".devstack")
PIDS, LOGS, SECRETS = STATE / "pids", STATE / "logs", STATE / "secrets"
ENV_FILE = Path(os.environ.get("STACK_ENV_FILE") or devstack.ROOT / ".env")
ORDER = ("minio", "rest-server", "orthanc", "dashboard")  # start order; stop in reverse ("minio": the object store)
STORES = ("versitygw", "minio")  # OBJECT_STORE: the first is the default
ORTHANC_CHILD_PID = PIDS / "orthanc.child.pid"
SUPERVISOR_LOG = LOGS / "supervise-orthanc.log"


def read_dotenv(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a Compose-style .env file (comments, blanks and quotes as Compose reads them)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = (part.strip() for part in line.removeprefix("export ").split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


DOTENV = read_dotenv(ENV_FILE)


def setting(name: str, default: str = "") -> str:
    """A setting from the environment, else from .env (the environment wins, as with Compose)."""
    return os.environ[name] if name in os.environ else DOTENV.get(name, default)


def port(name: str, default: int) -> int:
    raw = setting(f"STACK_{name}_PORT") or str(default)  # empty in .env: the default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"STACK_{name}_PORT={raw!r} is not a port number.")
    return int(raw)


def bind_address() -> str:
    """STACK_BIND: 127.0.0.1 (default, this machine only) or 0.0.0.0 (the network, on purpose).

    Orthanc cannot listen on one address only: 127.0.0.1 turns its remote access off (HTTP clients of other
    machines are refused), 0.0.0.0 turns it on. MinIO and rest-server always stay on 127.0.0.1.
    """
    raw = setting("STACK_BIND", "127.0.0.1") or "127.0.0.1"
    if raw not in ("127.0.0.1", "0.0.0.0"):  # noqa: S104 - opening to the network is the point of the setting
        sys.exit(f"STACK_BIND={raw!r} is not 127.0.0.1 (this machine only) or 0.0.0.0 (the network).")
    return raw


BIND = bind_address()


def object_store() -> tuple[str, str]:
    """OBJECT_STORE (``versitygw`` or ``minio``) and why, when it was not chosen in .env or the environment."""
    raw = setting("OBJECT_STORE").strip().lower()
    if raw:
        if raw not in STORES:
            sys.exit(f"OBJECT_STORE={raw!r} is not one of {', '.join(STORES)}.")
        return raw, ""
    minio_data = STATE / "minio"
    if minio_data.is_dir() and any(minio_data.iterdir()) and not (STATE / "versitygw").exists():
        return "minio", (
            "this stack's copies are in MinIO, so it stays on MinIO; OBJECT_STORE=versitygw in .env starts the "
            "default store instead (empty: the plugin does not copy again what it copied to MinIO)"
        )
    return STORES[0], ""


PORTS = {
    "orthanc": port("ORTHANC_HTTP", 8042),
    "dicom": port("DICOM", 4242),
    "minio": port("MINIO", 9000),
    "minio-console": port("MINIO_CONSOLE", 9001),
    "rest-server": port("REST_SERVER", 8000),
    "dashboard": port("DASHBOARD", 8080),
}


def secret(name: str, make: str | None = None) -> str:
    """Return the secret kept in .devstack/secrets/<name>, generating it on first use (mode 0600)."""
    private_dir(SECRETS)
    path = SECRETS / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make or devstack.new_secret())
    return path.read_text().strip()


def private_dir(path: Path) -> None:
    """Create ``path`` (and .devstack) owner-only: they hold patient data and secrets."""
    for folder in (STATE, path):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)


def cmdline(pid: int) -> list[str]:
    """A running process's command line ([] when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def environ(pid: int) -> dict[str, str]:
    """A running process's environment ({} when it is gone or not ours)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def running(name: str) -> devstack.Process | None:
    pid_file = PIDS / f"{name}.pid"
    if not pid_file.exists():
        return None
    proc = devstack.Process(name, int(pid_file.read_text()), LOGS / f"{name}.log")
    return proc if proc.alive() else None


def record(proc: devstack.Process, name: str | None = None) -> None:
    PIDS.mkdir(parents=True, exist_ok=True)
    (PIDS / f"{name or proc.name}.pid").write_text(str(proc.pid))


def store_program(proc: devstack.Process) -> str:
    """Which object store a running ``minio.pid`` process is (``versitygw`` or ``minio``)."""
    exe = Path((cmdline(proc.pid) or [""])[0]).name
    return "versitygw" if exe == "versitygw" else "minio"


def start_store(store: str, user: str, password: str) -> devstack.Process:
    """Start the object store ``store`` with its root account; its pid goes to minio.pid."""
    log = LOGS / f"{store}.log"
    if store == "versitygw":
        return devstack.start_versitygw(STATE / "versitygw", PORTS["minio"], user, password, log, name="minio")
    return devstack.start_minio(STATE / "minio", PORTS["minio"], PORTS["minio-console"], user, password, log)


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
        # The offsite stand-in's own login (rest-server --htpasswd-file); restic reads these two variables.
        "RESTIC_REST_USERNAME": secret(
            "rest_server_username", "pacs-" + devstack.new_secret(6).lower().replace("_", "-")
        ),
        "RESTIC_REST_PASSWORD": secret("rest_server_password"),
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
    """The object store's root account (user, password; MinIO or Versity S3 Gateway, the secrets' files keep
    their historic names): used only to set the store up, never given to the plugin."""
    return (
        secret("minio_root_user", "root-" + devstack.new_secret(6).lower().replace("_", "-")),
        secret("minio_root_password"),
    )


def reader_keys() -> dict[str, str]:
    """The dashboard's read-only bucket account (pictures and study pages while the PACS is down)."""
    return {
        "MINIO_READER_ACCESS_KEY": secret(
            "minio_reader_access_key", "reader-" + devstack.new_secret(6).lower().replace("_", "-")
        ),
        "MINIO_READER_SECRET_KEY": secret("minio_reader_secret_key"),
    }


def setup_store(env: dict[str, str]) -> list[str]:
    """Create (or check) the bucket and the plugin's own account with the root account; idempotent.

    Returns the set-up report's lines (no secrets). Raises StackError with the reason when it fails.
    """
    sys.path.insert(0, str(devstack.ROOT / "plugins"))
    from pacs_backup.cli.store_setup import load_setup_settings, provision
    from pacs_backup.contracts.errors import BackupError

    user, password = minio_root()
    try:
        settings = load_setup_settings(
            {
                **{
                    k: env[k]
                    for k in ("MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_BUCKET", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")
                },
                "MINIO_ROOT_USER": user,
                "MINIO_ROOT_PASSWORD": password,
                **reader_keys(),
            }
        )
        return provision(settings, wait_s=60).lines()
    except BackupError as exc:
        raise devstack.StackError(f"setting up the object store failed: {exc} (logs in {LOGS})") from None


@contextmanager
def step(what: str) -> Iterator[None]:
    """A progress line for one step of `make run` that takes a while, with how long it took."""
    start = time.monotonic()
    yield
    print(f"[run] {what} ({time.monotonic() - start:.1f} s)", flush=True)


def up() -> None:
    # A stack made before the plugin had its own account ran MinIO with the plugin's keys as root; it
    # gets its own root account now, so a MinIO still running with the old one is restarted once.
    migrate = not (SECRETS / "minio_root_user").exists()
    store_name, why = object_store()
    if why:
        print(f"object store: {why}")
    env = stack_env()
    root_user, root_password = minio_root()
    secret("restic_password")
    started = []
    minio = running("minio")
    if minio is not None and migrate:
        print("restarting minio with its own root account (the plugin gets a least-privilege account)")
        minio.stop(60)
    elif minio is not None and store_program(minio) != store_name:
        print(f"stopping {store_program(minio)}: OBJECT_STORE is {store_name} (each keeps its own data folder)")
        minio.stop(60)
    if not running("minio"):
        with step(f"{store_name} (the object store) answers"):
            record(start_store(store_name, root_user, root_password), "minio")
        started.append(store_name)
    with step("object store checked (bucket, the plugin's and the dashboard's accounts)"):
        store_report = setup_store(env)  # before Orthanc: the plugin's account may not create the bucket
    rest = running("rest-server")
    rest_got_login = rest is not None and "--no-auth" in cmdline(rest.pid)
    if rest is not None and rest_got_login:
        # A stack from before the offsite stand-in had a login: restart it with one, and Orthanc with the
        # credentials (below).
        print("restarting rest-server with a login (it ran without authentication)")
        rest.stop(30)
    if not running("rest-server"):
        with step("rest-server (the offsite stand-in) answers"):
            htpasswd = devstack.write_htpasswd(
                SECRETS / "rest-server.htpasswd", env["RESTIC_REST_USERNAME"], env["RESTIC_REST_PASSWORD"]
            )
            record(
                devstack.start_rest_server(
                    STATE / "offsite", PORTS["rest-server"], LOGS / "rest-server.log", htpasswd=htpasswd
                )
            )
        started.append("rest-server")
    settings = orthanc_settings(env)
    orthanc = running("orthanc")
    if orthanc is not None and (why := orthanc_restart_reason(orthanc, settings, rest_got_login)):
        print(f"restarting orthanc: {why}")
        stop_orthanc(orthanc)
    if not running("orthanc"):
        with step("orthanc with the backup plugin answers"):
            record(
                devstack.start_supervised_orthanc(
                    settings, orthanc_backup_env(env), LOGS / "orthanc.log", SUPERVISOR_LOG, ORTHANC_CHILD_PID
                )
            )
        started.append("orthanc")
    dashboard = running("dashboard")
    if dashboard is not None and environ(dashboard.pid).get("DASHBOARD_HOST", BIND) != BIND:
        print(f"restarting dashboard on {BIND} (STACK_BIND changed)")
        dashboard.stop(30)
    elif dashboard is not None and "MINIO_READER_ACCESS_KEY" not in environ(dashboard.pid):
        print("restarting dashboard with its read-only bucket account")
        dashboard.stop(30)
    if not running("dashboard"):
        dash_env = {k: env[k] for k in ("ORTHANC_URL", "ORTHANC_USERNAME", "DASHBOARD_USERNAME")}
        dash_env.update(
            {
                "ORTHANC_PASSWORD_FILE": str(SECRETS / "orthanc_password"),
                "DASHBOARD_PASSWORD_FILE": str(SECRETS / "dashboard_password"),
                **{k: env[k] for k in ("MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_BUCKET")},
                **reader_keys(),
                **dashboard_settings(),
            }
        )
        with step("dashboard answers"):
            record(
                devstack.start_dashboard(
                    PORTS["dashboard"], STATE / "dashboard", dash_env, LOGS / "dashboard.log", host=BIND
                )
            )
        started.append("dashboard")
    path = write_env(env)
    sheet = STATE / "recovery-sheet.txt"
    if not sheet.exists():
        subprocess.run(
            [
                str(devstack.ROOT / "scripts" / "recovery-sheet"),
                "--clinic",
                "Development stack",
                "--output",
                str(sheet),
            ],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
    print(f"Started: {', '.join(started) or 'nothing (all running)'}")
    print(
        f"  Orthanc      {env['ORTHANC_URL']}  (user {env['ORTHANC_USERNAME']}, DICOM {env['DICOM_AET']}@"
        f"{env['DICOM_HOST']}:{env['DICOM_PORT']})"
    )
    print(
        f"  Object store http://{env['MINIO_ENDPOINT']}  ({store_name}) bucket {env['MINIO_BUCKET']}  (root account "
        f"only in {SECRETS}/minio_root_*; stack.env has the plugin's own)"
    )
    for line in store_report:
        print(f"               {line}")
    print(
        f"  Offsite      {env['RESTIC_REPOSITORY']}  (rest-server, append-only, user "
        f"{env['RESTIC_REST_USERNAME']}; password in stack.env)"
    )
    print(f"  Status       {env['ORTHANC_URL']}/backup/status")
    print(f"  Dashboard    {env['DASHBOARD_URL']}  (user {env['DASHBOARD_USERNAME']})")
    if BIND == "127.0.0.1":
        print(
            "  Network      this machine only: Orthanc refuses web/REST clients of other machines, the "
            "dashboard listens on 127.0.0.1 (STACK_BIND=0.0.0.0 in .env opens both)"
        )
    else:
        print(f"  Network      open (STACK_BIND={BIND}): Orthanc's web/REST and the dashboard answer other machines")
    if settings.modalities:
        print(f"  DICOM        only these devices may store: {settings.modalities}")
    else:
        print(
            f"  DICOM        any device that reaches port {PORTS['dicom']} may store (Orthanc cannot listen on "
            "127.0.0.1 only); set DICOM_MODALITIES in .env to list the allowed devices"
        )
    print(f"  Settings and secrets: {path}  (logs in {LOGS})")
    print(f"  Recovery sheet: {sheet}  (print it; keep it away from this machine)")


def orthanc_settings(env: dict[str, str]) -> devstack.OrthancSettings:
    return devstack.OrthancSettings(
        work_dir=STATE / "orthanc",
        http_port=PORTS["orthanc"],
        dicom_port=PORTS["dicom"],
        username=env["ORTHANC_USERNAME"],
        password=env["ORTHANC_PASSWORD"],
        aet=env["DICOM_AET"],
        modalities=setting("DICOM_MODALITIES"),
        remote_access=BIND != "127.0.0.1",
    )


# Settings of the plugin an installer may give in .env (as with Compose); the store, its keys and the
# offsite stand-in are make run's own unless .env names another offsite repository.
_PLUGIN_PREFIXES = ("BACKUP_", "RESTIC_", "CLOUD_PACS_")
_PLUGIN_NAMES = ("MINIO_PREFIX", "MINIO_QUOTA_GB")
_DASHBOARD_NAMES = (
    "DASHBOARD_TZ",
    "DASHBOARD_SESSION_HOURS",
    "DASHBOARD_IDLE_MINUTES",
    "DASHBOARD_SHARE_DAYS",
    "DASHBOARD_SHARE_MAX_DAYS",
    "DASHBOARD_SHARE_URL",
    "DASHBOARD_WEBHOOK_HOSTS",
    "DASHBOARD_TECHNICIAN_CONTACT",
    "APPRISE_URLS",
    "DASHBOARD_SMTP_HOST",
    "DASHBOARD_SMTP_PORT",
    "DASHBOARD_SMTP_SECURITY",
    "DASHBOARD_SMTP_USERNAME",
    "DASHBOARD_SMTP_PASSWORD",
    "DASHBOARD_SMTP_PASSWORD_FILE",
    "DASHBOARD_SMTP_FROM",
    "DASHBOARD_HEARTBEAT_URL",
    "DASHBOARD_HEARTBEAT_MINUTES",
    "DASHBOARD_HEARTBEAT_HOSTS",
)


def user_settings(names: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """Non-empty settings named in .env with these names or prefixes (the environment wins for their
    values, as with Compose; variables only in the environment, e.g. a loaded stack.env, are not taken)."""
    keys = {k for k in DOTENV if k in names or k.startswith(prefixes)}
    return {k: v for k in sorted(keys) if (v := setting(k))}


def orthanc_backup_env(env: dict[str, str]) -> dict[str, str]:
    """The plugin's settings: secrets as *_FILE, so they stay out of Orthanc's environment; plus what
    .env sets (extra targets and their <NAME>_RESTIC_* variables, a cloud PACS, schedules...)."""
    backup_env = {k: env[k] for k in ("MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_BUCKET")}
    backup_env.update(
        {
            "MINIO_ACCESS_KEY_FILE": str(SECRETS / "minio_access_key"),
            "MINIO_SECRET_KEY_FILE": str(SECRETS / "minio_secret_key"),
            "RESTIC_REPOSITORY": env["RESTIC_REPOSITORY"],
            "RESTIC_PASSWORD_FILE": env["RESTIC_PASSWORD_FILE"],
            "RESTIC_REST_USERNAME": env["RESTIC_REST_USERNAME"],
            "RESTIC_REST_PASSWORD_FILE": str(SECRETS / "rest_server_password"),
        }
    )
    targets = [t.strip().upper().replace("-", "_") for t in setting("BACKUP_EXTRA_TARGETS").split(",") if t.strip()]
    chosen = user_settings(_PLUGIN_NAMES, _PLUGIN_PREFIXES + tuple(f"{t}_RESTIC_" for t in targets))
    if chosen.get("RESTIC_REPOSITORY"):  # the installer's own offsite repository instead of the stand-in
        for key in ("RESTIC_PASSWORD_FILE", "RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD_FILE"):
            backup_env.pop(key, None)
    backup_env.update(chosen)
    return backup_env


def dashboard_settings() -> dict[str, str]:
    """The dashboard's settings .env may give (time zone, sessions, alerts)."""
    return user_settings(_DASHBOARD_NAMES)


def orthanc_restart_reason(
    proc: devstack.Process, settings: devstack.OrthancSettings, restarted_rest: bool
) -> str | None:
    """Why a running Orthanc must be restarted to match this `make run`, or None."""
    if not any(arg.endswith("supervise.py") for arg in cmdline(proc.pid)):
        return "it ran without its supervisor (nothing restarted it after a crash)"
    if restarted_rest:
        return "the offsite stand-in now has a login"
    try:
        current = json.loads((settings.work_dir / "orthanc.json").read_text())
    except (OSError, ValueError):
        return "its configuration file is missing"
    if current != devstack.render_orthanc_config(settings):
        return "its configuration changed (.env or environment)"
    return None


def stop_orthanc(proc: devstack.Process | None) -> None:
    """Stop Orthanc's supervisor (which stops Orthanc), and an Orthanc it left behind if it was killed."""
    if proc is not None:
        proc.stop(60)
    if ORTHANC_CHILD_PID.exists():
        child = devstack.Process("orthanc", int(ORTHANC_CHILD_PID.read_text()), LOGS / "orthanc.log")
        if child.alive() and any(arg.endswith("Orthanc") for arg in cmdline(child.pid)[:1]):
            child.stop(60)
        ORTHANC_CHILD_PID.unlink(missing_ok=True)
    (PIDS / "orthanc.pid").unlink(missing_ok=True)


def down() -> None:
    for name in reversed(ORDER):
        proc = running(name)
        shown = f"{name} ({store_program(proc)})" if proc and name == "minio" else name
        if name == "orthanc":
            stop_orthanc(proc)
        elif proc:
            proc.stop(60)
        if proc:
            print(f"stopped {shown}")
        (PIDS / f"{name}.pid").unlink(missing_ok=True)


def status() -> None:
    for name in ORDER:
        proc = running(name)
        state = f"running (pid {proc.pid})" if proc else "stopped"
        if proc and name == "minio":
            state += f", {store_program(proc)}"
        if proc and name == "orthanc" and ORTHANC_CHILD_PID.exists():
            state = f"running (supervisor pid {proc.pid}, Orthanc pid {ORTHANC_CHILD_PID.read_text().strip()})"
        print(f"{name:12s} {state}")
    if running("orthanc"):
        sys.path.insert(0, str(devstack.ROOT / "plugins"))
        from pacs_backup.clients.orthanc_http import OrthancHttp
        from pacs_backup.contracts.errors import BackupError

        env = stack_env()
        try:
            st = OrthancHttp(env["ORTHANC_URL"], env["ORTHANC_USERNAME"], env["ORTHANC_PASSWORD"]).get_json(
                "/backup/status"
            )
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
