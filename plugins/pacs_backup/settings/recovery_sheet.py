"""The recovery sheet: on paper, what a technician needs to rebuild the PACS on a new box after losing it.

The steps on the new box depend on how the PACS was installed: the Docker Compose appliance (its
docker-compose.yml sets PACS_BACKUP_INSTALL=compose in the orthanc service, so the sheet that
``scripts/init`` writes through that container is the Compose one) or a native Debian install.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

from pacs_backup.contracts.errors import ConfigError

from .targets import TargetSettings

INSTALL_VARIABLE = "PACS_BACKUP_INSTALL"
COMPOSE, NATIVE = "compose", "native"
KEPT_SEPARATELY = "(kept separately: ask the clinic's owner)"

# The offsite server's own login, as restic's environment has it -> as .env names it for Compose.
_LOGIN_NAMES = {
    "RESTIC_REST_USERNAME": "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD": "RESTIC_REST_PASSWORD",
    "AWS_ACCESS_KEY_ID": "RESTIC_AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "RESTIC_AWS_SECRET_ACCESS_KEY",
}


@dataclass(frozen=True)
class SheetFacts:
    """What the sheet prints; secrets already replaced by a placeholder when they are kept off it."""

    clinic: str
    written: str
    repository: str
    repo_password: str
    login: tuple[tuple[str, str], ...]  # (restic's variable name, value or placeholder)
    minio: str
    bucket: str
    same_box: str | None = None  # why the repository is on the PACS's own box (jobs.placement), or None
    dashboard_port: str = "8443"  # the published HTTPS port (DASHBOARD_PORT; Compose hands it to orthanc)


def same_box_warning(why: str | None) -> str:
    """The framed capitals (a plain-text sheet's bold) under item 1 when the "offsite" copy is on this box."""
    if not why:
        return ""
    text = (
        f"Where it is: {why}. It is lost with the box in a fire, flood or theft, so it cannot rebuild "
        "the PACS then: it protects against mistakes only. Set up a real offsite copy (another building, "
        "cloud storage, or backup drives taken home) and print this sheet again."
    )
    lines = ["NOT OFFSITE: THIS REPOSITORY IS ON THE SAME BOX AS THE PACS.", *textwrap.wrap(text, 64)]
    frame = "   " + "*" * 70
    return "\n" + "\n".join([frame, *(f"   ** {line:<64s} **" for line in lines), frame])


def install_kind(env: Mapping[str, str], chosen: str | None = None) -> str:
    """``chosen`` (from --compose / --native), else PACS_BACKUP_INSTALL, else native."""
    if chosen:
        return chosen
    raw = (env.get(INSTALL_VARIABLE) or "").strip().lower()
    if not raw:
        return NATIVE
    if raw not in (COMPOSE, NATIVE):
        raise ConfigError(f"{INSTALL_VARIABLE}={raw!r} is not a kind of install; use compose or native.")
    return raw


def sheet_facts(
    env: Mapping[str, str],
    target: TargetSettings,
    clinic: str,
    written: str,
    without_password: bool,
    same_box: str | None = None,
) -> SheetFacts:
    repo_secret = target.password or (target.password_file.read_text().strip() if target.password_file else "")
    login = []
    for name in _LOGIN_NAMES:
        if target.env.get(name):
            secret_like = "PASSWORD" in name or "SECRET" in name
            login.append((name, "(kept separately)" if secret_like and without_password else target.env[name]))
    return SheetFacts(
        clinic=clinic[:32],
        written=written,
        repository=target.repository,
        repo_password=KEPT_SEPARATELY if without_password else repo_secret,
        login=tuple(login),
        minio=env.get("MINIO_ENDPOINT", "<object store address>"),
        bucket=env.get("MINIO_BUCKET", "pacs-backup"),
        same_box=same_box,
        dashboard_port=(env.get("DASHBOARD_PORT") or "").strip() or "8443",
    )


def render(kind: str, facts: SheetFacts) -> str:
    """The sheet of a ``kind`` of install (compose or native)."""
    common = dict(
        clinic=facts.clinic,
        written=facts.written,
        repository=facts.repository,
        repo_password=facts.repo_password,
        same_box=same_box_warning(facts.same_box),
    )
    if kind == COMPOSE:
        # The steps name where each secret is kept, never the secret: it is on the sheet once, in item 2.
        login = "".join(f"\n     {_LOGIN_NAMES[name]}={value}" for name, value in facts.login)
        return COMPOSE_SHEET.format(
            **common,
            title="PACS BACKUP - RECOVERY SHEET (Docker)",
            machine="box",
            login=f"\n   The offsite server's own login:{login}" if login else "",
            login_steps="".join(f"\n        {_LOGIN_NAMES[name]}=<from item 2>" for name, _ in facts.login),
            dashboard_port=facts.dashboard_port,
        )
    return NATIVE_SHEET.format(
        **common,
        title="PACS BACKUP - RECOVERY SHEET",
        machine="machine",
        login="".join(f"\n     export {name}='{value}'" for name, value in facts.login),
        minio=facts.minio,
        bucket=facts.bucket,
    )


# The top of both sheets: what the clinic keeps, and the two secrets without which nothing comes back.
_HEAD = """\
==========================================================================
 {title:<49s}CONFIDENTIAL: keep in the
 Clinic: {clinic:<32s}    clinic safe, NOT near the NAS
 Written: {written}
==========================================================================
If the PACS box is lost (fire, flood, theft, ransomware), every image can be
rebuilt on a new {machine} from the OFFSITE copy with only this sheet.

1. Offsite repository (encrypted with restic):
     {repository}{same_box}
2. Repository password (without it the backup cannot be read by anyone):
     {repo_password}"""

NATIVE_SHEET = (
    _HEAD
    + """
3. On the new machine (Debian 12 with this product installed, Orthanc running
   and empty), run:
     export ORTHANC_URL=http://127.0.0.1:8042 ORTHANC_USERNAME=<user> ORTHANC_PASSWORD=<password>
     export RESTIC_REPOSITORY='{repository}'
     printf '%s' '<password from 2.>' > /root/restic-password; chmod 600 /root/restic-password
     export RESTIC_PASSWORD_FILE=/root/restic-password{login}
     scripts/disaster-recovery --from offsite
   It prints progress and ends with a verification report. Exit code 0 means
   every image is back and identical to what was backed up.
4. If the local object store survived (second box), the same works with:
     MINIO_ENDPOINT={minio} MINIO_BUCKET={bucket} (+ its access keys)
     scripts/disaster-recovery --from minio
5. One study only:  scripts/restore-study --from offsite <StudyInstanceUID>
                    scripts/restore-study --from offsite --patient-id <ID>
==========================================================================
"""
)

COMPOSE_SHEET = (
    _HEAD
    + """{login}
3. Also keep safe, away from the box (this safe, or the clinic's password
   manager), these files of the box's install folder:
     .env           every setting and password of the install (its
                    RESTIC_PASSWORD is item 2)
     targets.env    backup drives and cloud storage copies, if any
     docker-compose.override.yml   the backup drives' folder, if any
     certs/tls.crt and certs/tls.key   only when the clinic's own HTTPS
                    certificate is there (a new box makes its own otherwise)
   Items 1 and 2 are enough to get every image back. Without the rest, the
   new box gets new passwords and any extra copy is set up again.
4. On the new box (a NAS with Docker, or a Debian mini-PC; the install
   guide, docs/install-guide.md, has the details of each):
   a. Install Docker and Compose, until `docker compose version` answers
      2.24 or newer (Synology: Container Manager; QNAP: Container Station;
      Debian 13: apt-get install docker.io docker-compose).
   b. Copy the same release of this product as the lost box ran (or a newer
      one) into a folder on the new box, and go into that folder.
   c. Settings: put the saved .env (item 3) there if you have it; if not,
        cp .env.example .env
      and write in .env:
        RESTIC_REPOSITORY={repository}
        RESTIC_PASSWORD=<the password of item 2>{login_steps}
      Either way, add for the time of the rebuild (so that no snapshot of
      the still empty PACS becomes the newest offsite copy):
        BACKUP_FIRST_RUN_DELAY_SECONDS=86400
   d. scripts/init --clinic "{clinic}"
      It fills every password still empty (never those of step c) and
      writes a new recovery sheet: print it once the rebuild is done.
   e. docker compose up -d --wait
   f. docker compose exec orthanc disaster-recovery --from offsite
      It prints progress and ends with a verification report.
   g. Check that it worked:
      - Right after f, `echo $?` prints 0: every image is back and identical
        to what was backed up (1: some are not, listed above the report).
      - Delete the BACKUP_FIRST_RUN_DELAY_SECONDS line from .env, then:
          docker compose up -d --wait
          docker compose exec orthanc snapshot-now      (exit code 0)
          docker compose exec orthanc verify-backups    (exit code 0)
      - Open https://<new box>:{dashboard_port} (user and password: DASHBOARD_USERNAME
        and DASHBOARD_PASSWORD in .env), find a patient seen shortly before
        the loss and open the study; the lights turn green within the hour.
5. One study only: the dashboard's "Find & restore a study" page, or
     docker compose exec orthanc restore-study --from offsite <StudyInstanceUID>
==========================================================================
"""
)
