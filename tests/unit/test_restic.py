import pytest

from pacs_backup.clients.restic import RepositoryUnreachable, Restic, repository_address


@pytest.mark.parametrize(
    ("repo", "addr"),
    [
        ("rest:http://127.0.0.1:8000/clinic", ("127.0.0.1", 8000)),
        ("rest:https://user:pw@offsite.example:8443/c", ("offsite.example", 8443)),
        ("s3:https://s3.example.com/bucket/path", ("s3.example.com", 443)),
        ("s3:s3.example.com:9000/bucket", ("s3.example.com", 9000)),
        ("sftp:backup@nas2:/srv/restic", ("nas2", 22)),
        ("sftp://backup@nas2:2222//srv/restic", ("nas2", 2222)),
        ("/mnt/usb/restic", None),
    ],
)
def test_repository_address_parses_backends(repo, addr):
    assert repository_address(repo) == addr


def test_restic_unreachable_server_fails_fast_with_address(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret-password")
    r = Restic("rest:http://127.0.0.1:9/x", password_file=pw)
    with pytest.raises(RepositoryUnreachable, match=r"127\.0\.0\.1:9 cannot be reached"):
        r.exists()


def test_restic_password_never_in_errors(tmp_path):
    r = Restic("rest:http://127.0.0.1:9/x", password="hunter2-very-secret")
    with pytest.raises(RepositoryUnreachable) as err:
        r.snapshots()
    assert "hunter2" not in str(err.value)


def test_the_projects_own_restic_is_found_without_path_or_setting(monkeypatch):
    """make setup builds restic into .tools/bin; the scripts and the plugin find it there wherever the
    module sits in the package tree (a move into a sub-package once hid it)."""
    from pacs_backup.clients.restic import find_restic
    from tests.support.common import ROOT

    monkeypatch.delenv("RESTIC_BINARY", raising=False)
    monkeypatch.setenv("PATH", "")
    assert find_restic() == str(ROOT / ".tools" / "bin" / "restic")


def test_restic_snapshot_lists_are_reused_only_when_asked_and_forgotten_when_this_process_changes_them(tmp_path):
    """A study's page may reuse a list read a minute ago (each restic run costs ~0.7 s of key derivation); a
    snapshot this process takes shows at once; one made elsewhere shows once the list is read afresh."""
    import subprocess

    from pacs_backup.clients.restic import find_restic

    pw, data = tmp_path / "pw", tmp_path / "data"
    pw.write_text("secret-password")
    data.mkdir()
    (data / "a.dcm").write_bytes(b"one")
    r = Restic(str(tmp_path / "repo"), password_file=pw, cache_dir=tmp_path / "cache")
    r.init()
    r.backup([str(data)], tags=["t"])
    assert len(r.snapshots("t", max_age_s=60)) == 1
    Restic(str(tmp_path / "repo"), password_file=pw, cache_dir=tmp_path / "cache").backup([str(data)], tags=["t"])
    assert len(r.snapshots("t", max_age_s=60)) == 2  # this process changed it: read afresh
    env = {"RESTIC_PASSWORD_FILE": str(pw), "RESTIC_REPOSITORY": str(tmp_path / "repo"), "HOME": str(tmp_path)}
    subprocess.run([find_restic(), "backup", "-q", "--tag", "t", str(data)], env=env, check=True)
    assert len(r.snapshots("t", max_age_s=60)) == 2  # made elsewhere: the minute-old list still serves
    assert len(r.snapshots("t")) == 3  # asked fresh (restores, drills)
