"""Drive checks (issue 23, item 7): a drive target's path must be a plugged-in disk of its own, not a symlink,
memory, a container's layers, a network share or the disk holding the PACS's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacs_backup.jobs.drives import Mount, kind_refusal, mount_of, mounts, placement

MOUNTINFO = r"""22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,size=400k
30 22 8:1 / /srv/orthanc rw,relatime shared:9 - ext4 /dev/sda1 rw
31 22 8:1 /backup /mnt/same\040disk rw,relatime shared:10 - ext4 /dev/sda1 rw
40 22 8:17 / /mnt/usb rw,relatime shared:11 - exfat /dev/sdb1 rw
41 22 0:50 / /mnt/nas rw,relatime shared:12 - nfs4 nas.clinic.lan:/volume1/backup rw,vers=4.2
42 22 0:51 / /mnt/share rw,relatime shared:13 - cifs //nas/backup rw
43 22 0:52 / /mnt/layers rw,relatime shared:14 - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c
44 40 0:53 / /mnt/usb rw,relatime shared:15 - tmpfs tmpfs rw
45 22 0:54 / /mnt/ssh rw,relatime - fuse.sshfs tech@nas:/backup rw
"""


def held(path: str) -> Mount:
    m = mount_of(path, mounts(MOUNTINFO))
    assert m is not None
    return m


def test_security_mountinfo_is_read_with_escapes_and_the_last_mount_on_a_folder_wins():
    table = mounts(MOUNTINFO)
    assert Mount("/mnt/same disk", "ext4", "/dev/sda1") in table
    assert held("/mnt/usb/pacs") == Mount("/mnt/usb", "tmpfs", "tmpfs")  # mounted over the drive
    assert held("/mnt/usbx/pacs").point == "/"
    assert held("/srv/orthanc/storage").source == "/dev/sda1"
    assert mounts("garbage\n\n1 2 3") == []
    assert mount_of("/x", []) is None


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/run/media/usb/pacs", "file system in memory (tmpfs)"),
        ("/mnt/usb/pacs", "file system in memory (tmpfs)"),
        ("/mnt/nas/pacs", "network share (nfs4)"),
        ("/mnt/share/pacs", "network share (cifs)"),
        ("/mnt/ssh/pacs", "network share (fuse.sshfs)"),
        ("/mnt/layers/pacs", "container's own file system (overlay)"),
        ("/mnt/same disk/pacs", "the disk that holds the PACS's own data"),
    ],
)
def test_security_memory_layers_shares_and_the_data_disk_are_not_drives(path, said):
    why = kind_refusal(Path(path), held(path), held("/srv/orthanc/storage"))
    assert why is not None and said in why and path in why
    if "share" in said:
        assert "_RESTIC_DRIVE=false" in why  # a share is its own kind of target


def test_security_a_plugged_in_disk_passes():
    table = [m for m in mounts(MOUNTINFO) if m.fstype != "tmpfs"]
    usb = mount_of("/mnt/usb/pacs", table)
    assert usb is not None and kind_refusal(Path("/mnt/usb/pacs"), usb, held("/srv/orthanc/storage")) is None


def test_security_a_path_through_a_symlink_is_refused(tmp_path):
    real = tmp_path / "media" / "drive"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    # Every other check would pass: another device, an ext4 disk.
    table = [Mount("/", "ext4", "/dev/vda"), Mount(str(real), "ext4", "/dev/sdb1")]
    why = placement(tmp_path / "link" / "pacs", tmp_path / "data", table)
    assert why is not None and "symbolic link" in why and str(real) in why
    (tmp_path / "media" / "linked-parent").symlink_to(real)
    assert "symbolic link" in (placement(tmp_path / "media" / "linked-parent" / "pacs", tmp_path, table) or "")


def test_security_an_unplugged_drive_under_a_memory_folder_is_not_connected(tmp_path, monkeypatch):
    import pacs_backup.jobs.drives as drives

    monkeypatch.setattr(drives, "_device", lambda p: 1 if str(p).startswith(str(tmp_path / "run")) else 2)
    monkeypatch.setattr(drives, "mount_point", lambda p: tmp_path / "run")
    table = [Mount("/", "ext4", "/dev/vda"), Mount(str(tmp_path / "run"), "tmpfs", "tmpfs")]
    (tmp_path / "run").mkdir()
    gone = placement(tmp_path / "run" / "media" / "LABEL" / "pacs", tmp_path / "data", table)
    assert gone is not None and "not connected" in gone and "Plug in" in gone
    (tmp_path / "run" / "media" / "LABEL").mkdir(parents=True)  # a folder in memory posing as the drive
    memory = placement(tmp_path / "run" / "media" / "LABEL" / "pacs", tmp_path / "data", table)
    assert memory is not None and "in memory" in memory
