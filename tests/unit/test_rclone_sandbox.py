"""How rclone is started for a cloud-storage target: the configuration is checked again before each use, rclone
runs as the unprivileged user from a copy with a cleared environment, a renewed token is kept only when nothing
else changed; and the provider forms of the settings page make only what the check allows."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pacs_backup.clients.restic import Restic
from pacs_backup.contracts.errors import BadRequest
from pacs_backup.rclone.forms import FORMS, build, obscure
from pacs_backup.rclone.sandbox import DROP, RcloneRefused, guarded, renewed
from tests.support.rclone_user import rclone_user_of_root_run

TOKEN = '{"access_token":"old-access","token_type":"Bearer","refresh_token":"r1","expiry":"2026-01-01T10:00:00Z"}'
FRESH = '{"access_token":"new-access","token_type":"Bearer","refresh_token":"r2","expiry":"2026-01-01T11:00:00Z"}'
CONF = f"# the clinic's drive\n[clinicdrive]\ntype = drive\ntoken = {TOKEN}\nroot_folder_id = abc\n"


def test_security_a_renewed_token_is_kept_and_nothing_else():
    after = f"[clinicdrive]\ntype = drive\nroot_folder_id = abc\ntoken = {FRESH}\n"  # rclone rewrites the file
    assert renewed(CONF, after) == CONF.replace(TOKEN, FRESH)  # the clinic's comment and order stay
    assert renewed(CONF, CONF) is None
    assert renewed(CONF, after.replace("abc", "other")) is None  # another value changed
    assert renewed(CONF, after + "client_id = x\n") is None  # an option added
    assert renewed(CONF, after.replace("type = drive", "type = drive\nssh = touch /tmp/x")) is None  # refused


def test_security_the_configuration_is_checked_before_restic_starts(tmp_path):
    conf = tmp_path / "rclone.conf"
    conf.write_text("[cloud]\ntype = alias\nremote = :webdav,url='http://127.0.0.1:9',bearer_token_command='x':\n")
    restic = Restic(
        "rclone:cloud:pacs", password="p", binary="/nonexistent/restic", extra_env={"RCLONE_CONFIG": str(conf)}
    )
    with pytest.raises(RcloneRefused, match=r"refused, so rclone was not started: Line 3: \[cloud\] \(alias\)"):
        restic.probe()  # not "restic is not installed": nothing was started
    conf.write_text("[other]\ntype = local\n")
    with pytest.raises(RcloneRefused, match=r"no remote \[cloud\]"):
        restic.snapshots()
    with pytest.raises(RcloneRefused, match="no connection string"):
        Restic("rclone:cloud,x=y:pacs", password="p", extra_env={"RCLONE_CONFIG": str(conf)}).init()
    with pytest.raises(RcloneRefused, match="There is no rclone configuration"):
        Restic("rclone:cloud:p", password="p", extra_env={"RCLONE_CONFIG": str(tmp_path / "none")}).init()


def test_security_rclone_is_started_as_the_unprivileged_user_from_a_copy(tmp_path):
    pw = rclone_user_of_root_run()
    conf = tmp_path / "rclone.conf"
    conf.write_text(CONF)
    env = {"RCLONE_CONFIG": str(conf), "RESTIC_PASSWORD": "secret", "PATH": os.environ["PATH"]}
    with guarded("rclone:clinicdrive:pacs", env) as (options, child_env):
        assert options[0] == "-o" and options[1].startswith("rclone.program=")
        program = options[1].removeprefix("rclone.program=").split()
        assert program[1:4] == ["-I", "-S", str(DROP)]
        assert program[program.index("--uid") + 1] == str(pw.pw_uid) and program[-1] == "--"
        copy = Path(program[program.index("--config") + 1])
        assert copy.parent.parent == Path(pw.pw_dir) and copy.read_text() == CONF
        st = copy.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (pw.pw_uid, 0o600)
        assert "RCLONE_CONFIG" not in child_env
        copy.write_text(CONF.replace(TOKEN, FRESH))  # as rclone does when it renews the token
    assert not copy.parent.exists()  # the run's folder is gone
    assert conf.read_text() == CONF.replace(TOKEN, FRESH) and conf.stat().st_mode & 0o777 == 0o600


def test_security_the_starter_drops_root_and_clears_the_environment():
    pw = rclone_user_of_root_run()
    home = pw.pw_dir
    done = subprocess.run(
        [
            *("python3", "-I", "-S", str(DROP), "--home", home, "--config", f"{home}/x.conf", "--rclone", "/bin/cat"),
            *("--uid", str(pw.pw_uid), "--gid", str(pw.pw_gid), "--", "/proc/self/status", "/proc/self/environ"),
        ],
        env={"PATH": "/usr/bin:/bin", "RESTIC_PASSWORD": "secret", "AWS_SECRET_ACCESS_KEY": "k"},
        capture_output=True,
        text=True,
        check=True,
    )
    status = dict(line.split(":\t", 1) for line in done.stdout.split("\n") if ":\t" in line)
    assert status["Uid"].split() == [str(pw.pw_uid)] * 4 and status["Gid"].split() == [str(pw.pw_gid)] * 4
    assert status["Groups"].strip() == "" and status["NoNewPrivs"].strip() == "1"
    assert status["CapEff"].strip("0\n") == "" and status["CapPrm"].strip("0\n") == ""
    assert "secret" not in done.stdout and f"RCLONE_CONFIG={home}/x.conf" in done.stdout
    refused = subprocess.run(
        ["python3", "-I", "-S", str(DROP), "--home", home, "--config", "/x", "--rclone", "/bin/true", "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1 and "needs the user" in refused.stderr  # never rclone as root


@pytest.mark.parametrize("provider", list(FORMS))
def test_each_provider_form_makes_a_configuration_the_check_allows(provider):
    fields = {
        "token": f"Paste the following into your remote machine --->\n{TOKEN}\n<---End paste",
        "root_folder_id": "1AbC_d-e",
        "drive_id": "b!Ab-9",
        "drive_type": "business",
        "account": "0012ab",
        "key": "K001/secret+x",
        "provider": "Wasabi",
        "access_key_id": "AK",
        "secret_access_key": "SK/x",
        "region": "eu-central-1",
        "endpoint": "https://s3.eu-central-1.wasabisys.com",
        "url": "https://cloud.example.org/remote.php/dav/files/vet",
        "vendor": "nextcloud",
        "user": "vet@example.org",
        "pass": "pa ss$word",
        "host": "nas.example.org",
        "port": "2222",
        "key_pem": "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAA\r\nAAAA==\r\n"
        "-----END OPENSSH PRIVATE KEY-----\r\n",
    }
    text = build(provider, "clinicdrive", fields)
    assert f"[clinicdrive]\ntype = {provider}\n" in text and "pa ss$word" not in text


def test_security_a_form_cannot_bring_in_options_and_says_which_field():
    with pytest.raises(BadRequest, match="user name holds line breaks"):
        build("webdav", "c", {"url": "https://x.org", "vendor": "other", "user": "a\nssh = touch /tmp/x", "pass": "p"})
    with pytest.raises(BadRequest, match=r"^The address \(https://...\) is not accepted: it must be an https://"):
        build("webdav", "c", {"url": "http://evil.example.org", "vendor": "other", "user": "a", "pass": "p"})
    with pytest.raises(BadRequest, match="server name or address is not accepted: it holds shell characters"):
        build("sftp", "c", {"host": "nas;touch /tmp/x", "user": "u", "key_pem": "-----BEGIN"})
    with pytest.raises(BadRequest, match="not the JSON that rclone authorize printed"):
        build("drive", "c", {"token": "touch /tmp/x"})
    with pytest.raises(BadRequest, match="Fill in the application key"):
        build("b2", "c", {"account": "1"})
    with pytest.raises(BadRequest, match="name of the remote"):
        build("b2", ":sftp,ssh=x:", {"account": "1", "key": "2"})


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is installed by dev/setup")
def test_an_obscured_password_is_what_rclone_reveals():
    done = subprocess.run(["rclone", "reveal", obscure("pä ss$w0rd")], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "pä ss$w0rd"
