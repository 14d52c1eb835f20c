"""Which copies survive the loss of this box: the decision for every kind of repository and host
(issue 29 item 1: a rest-server container on the same NAS is not an offsite copy)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.jobs.machine import Machine, Mount, mounts_of, own_ipv4, own_ipv6, this_machine
from pacs_backup.jobs.placement import (
    COMPOSE_SERVICES,
    Placement,
    Verdict,
    host_verdict,
    placement_of,
    repository_verdict,
    target_verdict,
    url_verdict,
)
from pacs_backup.settings.config import load_settings
from pacs_backup.settings.targets import load_target
from tests.support.common import ROOT

ip = ipaddress.ip_address
LAN, NAS_V6 = ip("192.168.1.10"), ip("fd00::10")
DNS = {
    "pacsbox.clinic.lan": [LAN],  # this machine's own name in the clinic's DNS
    "backup.example": [ip("203.0.113.7")],
    "twohomes.example": [ip("2001:db8::7"), ip("::1")],
    "nas6.clinic.lan": [NAS_V6],
    "otherbox.clinic.lan": [ip("192.168.1.20")],
}
MOUNTS = (
    Mount("/", "overlay", "overlay"),
    Mount("/srv", "ext4", "/dev/sda2"),
    Mount("/mnt/nas", "nfs4", "otherbox.clinic.lan:/exports/backup"),
    Mount("/mnt/self-share", "nfs", "127.0.0.1:/export"),
    Mount("/mnt/smb", "cifs", "//192.168.1.20/backup"),
    Mount("/mnt/gdrive", "fuse.rclone", "gdrive:"),
)


def resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    if host not in DNS:
        raise OSError("Name or service not known")
    return DNS[host]  # type: ignore[return-value]


BOX = Machine(
    addresses=frozenset({LAN, NAS_V6, ip("172.18.0.3")}),
    names=frozenset({"pacsbox"}),
    mounts=MOUNTS,
    resolve=resolve,
)


STORE = {"MINIO_ACCESS_KEY": "a", "MINIO_SECRET_KEY": "b", "MINIO_ENDPOINT": "minio:9000"}


def same(repository: str, **kw) -> bool:
    return repository_verdict(repository, BOX, **kw).same_box


@pytest.mark.parametrize(
    ("repository", "on_box"),
    [
        # rest-server: loopback v4 and v6, the machine's own addresses and names, a Compose service
        ("rest:http://127.0.0.1:8000/clinic", True),
        ("rest:http://127.8.9.1:8000/clinic", True),
        ("rest:http://[::1]:8000/clinic", True),
        ("rest:http://[::ffff:127.0.0.1]:8000/clinic", True),
        ("rest:http://localhost:8000/clinic", True),
        ("rest:https://user:secret@LOCALHOST.:8000/clinic", True),
        ("rest:http://0.0.0.0:8000/", True),
        ("rest:http://192.168.1.10:8000/clinic", True),
        ("rest:http://[fd00::10]:8000/clinic", True),
        ("rest:http://pacsbox:8000/clinic", True),
        ("rest:http://pacsbox.clinic.lan:8000/clinic", True),
        ("rest:http://rest-server:8000/clinic", True),
        ("rest:http://pacsbackup1a2b-rest-server-1:8000/clinic", True),
        ("rest:http://host.docker.internal:8000/clinic", True),
        ("rest:http+unix:///run/rest.sock:/clinic", True),
        ("rest:https://backup.example:8000/clinic", False),
        ("rest:https://user:pw@otherbox.clinic.lan/clinic", False),
        ("rest:https://192.168.1.20:8000/clinic", False),
        ("rest:https://twohomes.example/clinic", True),  # one of its addresses is this machine
        ("rest:https://nas6.clinic.lan/clinic", True),
        ("rest:https://unknown.invalid/clinic", False),  # cannot be looked up: not claimed to be here
        # S3
        ("s3:http://minio:9000/restic", True),
        ("s3:127.0.0.1:9000/restic", True),
        ("s3:s3.amazonaws.com/clinic-backup", False),
        ("s3:https://backup.example/bucket", False),
        # SFTP in its three spellings
        ("sftp:user@127.0.0.1:/srv/restic", True),
        ("sftp:pacsbox:/srv/restic", True),
        ("sftp:user@[::1]:/srv/restic", True),
        ("sftp://user@localhost:2222//srv/restic", True),
        ("sftp:backup@backup.example:/srv/restic@home", False),
        ("sftp://user@[2001:db8::7]:2222//srv", False),
        # providers' clouds
        ("b2:clinic-bucket:pacs", False),
        ("azure:container:/pacs", False),
        ("gs:bucket:/pacs", False),
        ("swift:container:/pacs", False),
    ],
)
def test_each_kind_of_repository(repository, on_box):
    verdict = repository_verdict(repository, BOX)
    assert verdict.same_box is on_box, verdict
    assert verdict.why and "secret" not in verdict.why


def test_a_folder_on_a_disk_of_the_box_is_same_box_a_drive_is_not():
    assert same("/srv/restic")
    assert same("local:/srv/restic")
    assert same("/var/backups/restic")  # on the root file system
    # Drives are removable by definition: taken home in rotation.
    drive = repository_verdict("/srv/backup-drive/pacs", BOX, drive=True)
    assert not drive.same_box and "backup drive" in drive.why


def test_a_network_share_is_where_its_server_is():
    nfs = repository_verdict("/mnt/nas/restic", BOX)
    assert not nfs.same_box and "otherbox.clinic.lan" in nfs.why
    assert same("/mnt/self-share/restic")  # an NFS export of this very machine
    assert not same("/mnt/smb/restic")
    assert not same("/mnt/gdrive/restic")  # cloud storage mounted as a folder
    assert same("/mnt/nasty/restic")  # a sibling folder of /mnt/nas is not inside it


RCLONE = {
    "disk": {"type": "local"},
    "gdrive": {"type": "drive", "token": "{}"},
    "secret": {"type": "crypt", "remote": "disk:vault", "password": "x"},
    "secretcloud": {"type": "crypt", "remote": "gdrive:vault", "password": "x"},
    "both": {"type": "union", "upstreams": "disk:a gdrive:b"},
    "twodisks": {"type": "union", "upstreams": "disk:a disk:b:ro"},
    "myself": {"type": "sftp", "host": "127.0.0.1"},
    "elsewhere": {"type": "sftp", "host": "backup.example"},
    "nextcloud": {"type": "webdav", "url": "https://localhost/remote.php/dav"},
    "s3box": {"type": "s3", "endpoint": "http://minio:9000"},
    "aws": {"type": "s3", "provider": "AWS"},
    "loop": {"type": "alias", "remote": "loop:x"},
}


@pytest.mark.parametrize(
    ("repository", "on_box"),
    [
        ("rclone:disk:/srv/pacs", True),
        ("rclone:disk:/mnt/nas/pacs", False),  # type local, but the folder is an NFS share of another machine
        ("rclone:gdrive:pacs", False),
        ("rclone:secret:pacs", True),
        ("rclone:secretcloud:pacs", False),
        ("rclone:both:pacs", False),
        ("rclone:twodisks:pacs", True),
        ("rclone:myself:pacs", True),
        ("rclone:elsewhere:pacs", False),
        ("rclone:nextcloud:pacs", True),
        ("rclone:s3box:pacs", True),
        ("rclone:aws:pacs", False),
        ("rclone::local:/srv/pacs", True),
        ("rclone:missing:pacs", False),
        ("rclone:loop:pacs", False),
    ],
)
def test_rclone_remotes_of_type_local_and_what_wraps_them_are_same_box(repository, on_box):
    verdict = repository_verdict(repository, BOX, rclone_config=RCLONE)
    assert verdict.same_box is on_box, verdict


def test_an_rclone_target_reads_its_own_configuration(tmp_path):
    conf = tmp_path / "rclone.conf"
    conf.write_text("[clinicdrive]\ntype = local\n\n[gdrive]\ntype = drive\n")
    env = {"RESTIC_PASSWORD": "x", "RESTIC_RCLONE_CONFIG": str(conf)}
    local = load_target({**env, "RESTIC_REPOSITORY": "rclone:clinicdrive:/srv/pacs"}, "offsite", "RESTIC_")
    cloud = load_target({**env, "RESTIC_REPOSITORY": "rclone:gdrive:pacs"}, "offsite", "RESTIC_")
    assert local is not None and cloud is not None
    verdict = target_verdict(local, BOX)
    assert verdict.same_box and "[clinicdrive] is an rclone remote of type local" in verdict.why
    assert not target_verdict(cloud, BOX).same_box
    conf.write_text("this is not an rclone configuration")  # cannot tell: not claimed to be on the box
    assert not target_verdict(local, BOX).same_box


def test_compose_service_names_are_the_services_of_docker_compose_yml():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == COMPOSE_SERVICES
    for service in COMPOSE_SERVICES | {"minio"}:  # the store's older name, still in MINIO_ENDPOINT=minio:9000
        assert host_verdict(service, BOX).same_box
    assert not host_verdict("rest-server-backup.example", BOX).same_box  # unresolvable, not a service
    assert "Compose" in host_verdict("rest-server", BOX).why


def test_the_cloud_pacs_url_and_its_dicom_address():
    assert url_verdict("http://127.0.0.1:8042/dicom-web", BOX).same_box
    assert url_verdict("http://orthanc:8042/dicom-web", BOX).same_box
    assert not url_verdict("https://pacs.backup.example/dicom-web", BOX).same_box
    dicom = load_settings(Path("/tmp/x.sqlite"), {**STORE, "CLOUD_PACS_DICOM": "CLOUD@127.0.0.1:104"})
    placement = placement_of(dicom)
    placement_machine(placement)
    assert placement.verdict("cloud-pacs") == Verdict(True, "127.0.0.1 is loopback: this machine itself")
    assert placement.verdict("minio") is not None and placement.verdict("minio").same_box  # type: ignore[union-attr]


def placement_machine(placement: Placement, machine: Machine = BOX) -> Placement:
    placement._machine = lambda: machine  # the test's machine instead of this one
    placement.refresh_if_due()
    return placement


def test_the_status_part_of_each_copy_and_the_setting_for_tests_and_trials():
    env = {
        **STORE,
        "RESTIC_REPOSITORY": "rest:http://127.0.0.1:8000/clinic",
        "RESTIC_PASSWORD": "x",
        "BACKUP_EXTRA_TARGETS": "usb",
        "USB_RESTIC_REPOSITORY": "/srv/drive/pacs",
        "USB_RESTIC_PASSWORD": "x",
        "CLOUD_PACS_URL": "https://pacs.backup.example/dicom-web",
    }
    plain = placement_machine(placement_of(load_settings(Path("/tmp/x.sqlite"), env)))
    assert plain.doc("offsite") == {"same_box": True, "same_box_reason": "127.0.0.1 is loopback: this machine itself"}
    assert plain.doc("usb")["same_box"] is False and plain.doc("cloud-pacs")["same_box"] is False
    assert not plain.none_away()  # the drive and the cloud PACS are away
    treated = load_settings(Path("/tmp/x.sqlite"), {**env, "BACKUP_TREAT_AS_OFFSITE": "Offsite, cloud-pacs"})
    assert treated.treat_as_offsite == {"offsite", "cloud-pacs"}
    doc = placement_machine(placement_of(treated)).doc("offsite")
    assert doc["same_box"] is True and doc["treated_as_offsite"] is True
    with pytest.raises(ConfigError, match=r"BACKUP_TREAT_AS_OFFSITE names 'nas'.*offsite, usb, cloud-pacs"):
        load_settings(Path("/tmp/x.sqlite"), {**env, "BACKUP_TREAT_AS_OFFSITE": "nas"})


def test_every_copy_on_the_box_is_none_away():
    env = {
        **STORE,
        "RESTIC_REPOSITORY": "rest:http://rest-server:8000/clinic",
        "RESTIC_PASSWORD": "x",
    }
    p = placement_of(load_settings(Path("/tmp/x.sqlite"), env))
    assert p.doc("offsite") == {} and not p.none_away()  # not decided yet: nothing claimed
    assert placement_machine(p).none_away()


def test_it_is_decided_again_only_after_an_hour_and_a_failure_keeps_the_last_verdicts():
    now = [0.0]
    calls = []

    def machine() -> Machine:
        calls.append(now[0])
        if len(calls) == 2:
            raise OSError("no /proc")
        return BOX

    decide = {"offsite": lambda m: repository_verdict("rest:http://127.0.0.1/", m)}
    p = Placement(decide, machine=machine, clock=lambda: now[0])
    p.refresh_if_due()
    p.refresh_if_due()
    assert calls == [0.0] and p.doc("offsite")["same_box"] is True
    now[0] = 3601.0
    p.refresh_if_due()
    assert len(calls) == 2 and p.doc("offsite")["same_box"] is True
    p.refresh_soon()  # an rclone configuration was pasted: at once, not in an hour
    p.refresh_if_due()
    assert len(calls) == 3


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 4
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.168.1.0/24 2 0 2
           |-- 192.168.1.10
              /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
"""
IF_INET6 = """00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000010 04 40 00 82     eth0
"""
MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
31 27 8:2 / /srv/my\040disk rw,relatime shared:2 - ext4 /dev/sda2 rw
40 27 0:50 / /mnt/nas rw,relatime shared:9 - nfs4 nas:/exports/backup rw,vers=4.2
"""


def test_this_machines_addresses_and_mounts_are_read_from_proc():
    assert own_ipv4(FIB_TRIE) == {ip("127.0.0.1"), ip("192.168.1.10")}
    assert own_ipv6(IF_INET6) == {ip("::1"), ip("fd00::10")}
    assert mounts_of(MOUNTINFO)[1:] == (
        Mount("/srv/my disk", "ext4", "/dev/sda2"),
        Mount("/mnt/nas", "nfs4", "nas:/exports/backup"),
    )
    here = this_machine()  # the real one: loopback at least, and its own name
    assert ip("127.0.0.1") in here.addresses and here.names
    assert url_verdict("http://127.0.0.1:8000/", here).same_box


def test_the_plugins_status_says_same_box_per_copy_and_warns_when_none_is_away(tmp_path):
    from pacs_backup.api.service import BackupService

    env = {
        **STORE,
        "RESTIC_REPOSITORY": "rest:http://rest-server:8000/clinic",
        "RESTIC_PASSWORD": "x",
        "CLOUD_PACS_URL": "http://127.0.0.1:8043/dicom-web",
        "CLOUD_PACS_USERNAME": "u",
        "CLOUD_PACS_PASSWORD": "p",
    }
    svc = BackupService(lambda uri: b"{}", tmp_path, env)
    assert svc.placement is not None and svc.offsite is not None
    before = svc.status()
    assert "same_box" not in before["offsite"]["offsite"] and "offsite_warning" not in before  # not decided yet
    placement_machine(svc.placement)
    status = svc.status()
    offsite, cloud = status["offsite"]["offsite"], status["cloud_pacs"]
    assert offsite["same_box"] is True and "Compose stack" in offsite["same_box_reason"]
    assert cloud["same_box"] is True and "treated_as_offsite" not in cloud
    assert status["offsite"]["minio"]["same_box"] is True  # the local copy, as its name says
    assert status["offsite_warning"].startswith("Every copy is on this box")
