"""A pasted rclone configuration: checked against the allow-list (providers, options, value shapes, wrapping
remotes of the same file), written owner-only where the cloud-storage targets read it, answered with remote
names and types only. The table of hostile configurations holds every known way to make rclone run a program,
in every wrapping remote; each is refused with a sentence naming the line and the remote, never a value."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from pacs_backup.api.access import Access, Role
from pacs_backup.api.routes import dispatch
from pacs_backup.contracts.errors import BadRequest
from pacs_backup.rclone.config import MAX_WRAP_DEPTH, config_file, parse, remotes_in, save, with_default
from pacs_backup.settings.targets import load_targets

TOKEN = (
    '{"access_token":"ya29.SECRET-TOKEN","token_type":"Bearer","refresh_token":"1//0g-x",'
    '"expiry":"2026-01-01T10:00:00.5+01:00"}'
)
GOOD = f"# made with rclone config\n[clinicdrive]\ntype = drive\ntoken = {TOKEN}\n\n[b2]\ntype = b2\nkey = SECRET-KEY\n"
CANARY = "/tmp/pacs-canary"
# Connection strings: a backend named inline with options, or a named remote given options after a comma.
CS_WEBDAV = f":webdav,url='http://127.0.0.1:9',bearer_token_command='touch {CANARY}':dir"
CS_SFTP = f':sftp,host=example.org,ssh="touch {CANARY}":'
CS_NAMED = f"store,bearer_token_command='touch {CANARY}':"
CS_LOCAL = ":local:/etc"
STORE = "\n[store]\ntype = webdav\nurl = https://dav.example.org/x\n"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\nAAAA==\\n-----END OPENSSH PRIVATE KEY-----"

_WRAPPED = [
    (f"[evil]\ntype = {kind}\nremote = {cs}\n{extra}{STORE}", "connection string")
    for kind, extra in (
        ("alias", ""),
        ("crypt", "password = c2VjcmV0c2VjcmV0\n"),
        ("chunker", ""),
        ("compress", ""),
        ("hasher", ""),
    )
    for cs in (CS_WEBDAV, CS_SFTP, CS_NAMED, CS_LOCAL)
]
HOSTILE = [
    *_WRAPPED,  # 20: each trick in each single-remote wrapper
    (f"[evil]\ntype = union\nupstreams = store:a {CS_WEBDAV}\n{STORE}", "connection string"),
    (f'[evil]\ntype = union\nupstreams = store:a "{CS_SFTP}"\n{STORE}', "connection string"),
    (f"[evil]\ntype = combine\nupstreams = a=store:a b={CS_WEBDAV}\n{STORE}", "connection string"),
    (f"[evil]\ntype = combine\nupstreams = a={CS_NAMED}\n{STORE}", "connection string"),
    (f"[evil]\ntype = webdav\nurl = https://x.org\nbearer_token_command = touch {CANARY}\n", "run a program"),
    (f"[evil]\ntype = sftp\nhost = example.org\nssh = sh -c 'touch {CANARY}'\n", "run a program"),
    (f"[evil]\ntype = sftp\nhost = example.org\nserver_command = touch {CANARY}\n", "run a program"),
    (f"[evil]\ntype = sftp\nhost = example.org\nmd5sum_command = touch {CANARY}\n", "run a program"),
    (f"[evil]\ncredential_process = touch {CANARY}\ntype = s3\n", "run a program"),
    ("[evil]\ntype = s3\nshared_credentials_file = /tmp/evil-aws\n", "run a program"),
    (f"[evil]\ntype = local\npassword_command = touch {CANARY}\n", "run a program"),
    (f"[evil]\ntype = sftp\nhost = example.org\nSSH = touch {CANARY}\n", "run a program"),
    ("[evil]\ntype = sftp\nhost = example.org\nkey_file = /etc/shadow\n", "read a file"),
    ("[evil]\ntype = drive\nservice_account_file = /etc/shadow\n", "read a file"),
    ("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nabc", "encrypted"),
    (f"[evil]\ntype = webdav\nurl = https://x.org\nuser = $(touch {CANARY})\n", "shell characters"),
    (f"[evil]\ntype = s3\nregion = `touch {CANARY}`\n", "shell characters"),
    (f"[evil]\ntype = sftp\nhost = nas;touch {CANARY}\n", "shell characters"),
    ("[evil]\ntype = local\nlinks = true\n", "cannot have the option 'links'"),
    ("[evil]\ntype = local\ncopy_links = true\n", "cannot have the option 'copy_links'"),
    ("[evil]\ntype = memory\n", "does not allow"),
    ("[evil]\ntype = http\nurl = https://x.org\n", "does not allow"),
    ("[evil]\ntype = sftp\nhost = example.org\nuser = u\npass = c2VjcmV0\n", "cannot have the option 'pass'"),
    ("[evil]\ntype = alias\nremote = elsewhere:x\n", "not defined in this file"),
    ("[evil]\ntype = union\nupstreams = store:a elsewhere:b\n" + STORE, "not defined in this file"),
    ("[evil]\ntype = alias\nremote = other:x\n\n[other]\ntype = crypt\nremote = evil:\n", "wraps itself"),
    ("[evil]\ntype = alias\nremote = evil:sub\n", "wraps itself"),
    ("[evil]\ntype = alias\nremote = /etc\n", "file or program"),
    ("[evil]\ntype = s3\nenv_auth = true\n", "must be one of false"),
    ("[evil]\ntype = webdav\nurl = http://dav.example.org/\n", "https://"),
    ("[evil]\ntype = s3\nendpoint = https://user:pw@s3.example.org\n", "without user or password"),
    ('[evil]\ntype = drive\ntoken = {"access_token":"x","token_url":"https://evil.example.org"}\n', "rclone authorize"),
    ("[evil]\ntype = webdav\nurl = https://x.org\nheaders = Cookie,x\n", "cannot have the option 'headers'"),
    (f"[evil]\ntype = sftp\nssh: touch {CANARY}\n", "not 'option = value'"),
    (f"[evil]\ntype = local\n# hidden\rssh = touch {CANARY}\n", "control characters"),
    (f"[evil]\ntype = local\n# hidden\u2028ssh = touch {CANARY}\n", "control characters"),
    ("[evil]\ntype = alias\nremote = bad:\n\n[bad]\ntype = memory\n", "does not allow"),
    (
        f"[evil]\ntype = sftp\nhost = example.org\nkey_pem = {PEM}\nsubsystem = x\n",
        "cannot have the option 'subsystem'",
    ),
]


@pytest.mark.parametrize(("text", "words"), HOSTILE)
def test_security_hostile_rclone_configuration_is_refused_with_a_sentence(text, words):
    with pytest.raises(BadRequest, match=words) as refused:
        parse(text)
    sentence = str(refused.value)
    assert sentence.endswith((".", "!")) and len(sentence) > 30
    assert "touch" not in sentence and CANARY not in sentence and "SECRET" not in sentence  # never a value
    if "ENCRYPT" not in text:
        assert sentence.startswith("Line ")  # says where
        assert "[evil]" in sentence or "[other]" in sentence or "[bad]" in sentence or "option" in sentence


def test_security_the_hostile_table_covers_every_trick_in_every_wrapper():
    assert len(HOSTILE) >= 30
    for kind in ("alias", "crypt", "union", "combine", "chunker", "compress", "hasher"):
        assert any(f"type = {kind}\n" in text and words == "connection string" for text, words in HOSTILE), kind


@pytest.mark.parametrize(
    ("text", "types"),
    [
        (GOOD, ["drive", "b2"]),
        (f"[d]\ntype = dropbox\ntoken = {TOKEN}\nclient_id = abc\nclient_secret =\n", ["dropbox"]),
        (f"[o]\ntype = onedrive\ntoken = {TOKEN}\ndrive_id = b!Ab-9_x\ndrive_type = business\n", ["onedrive"]),
        (
            "[s]\ntype = s3\nprovider = Wasabi\naccess_key_id = AK\nsecret_access_key = /x+y=\nregion = eu-central-1\n"
            "endpoint = https://s3.eu-central-1.wasabisys.com\nenv_auth = false\n",
            ["s3"],
        ),
        (
            "[w]\ntype = webdav\nurl = https://cloud.example.org/remote.php/dav/files/x\nvendor = nextcloud\n"
            "user = vet@example.org\npass = c2VjcmV0\n",
            ["webdav"],
        ),
        (f"[f]\ntype = sftp\nhost = nas.example.org\nuser = backup\nport = 2222\nkey_pem = {PEM}\n", ["sftp"]),
        ("[l]\ntype = local\n", ["local"]),
        (
            f"[c]\ntype = crypt\nremote = a:enc\npassword = c2VjcmV0\n[a]\ntype = alias\nremote = d:x\n"
            f"[d]\ntype = drive\ntoken = {TOKEN}\n",
            ["crypt", "alias", "drive"],
        ),
        (
            "[u]\ntype = union\nupstreams = a:x a:y:ro\n[c]\ntype = combine\nupstreams = one=a:x two=a:y\n"
            "[k]\ntype = chunker\nremote = a:z\n[z]\ntype = compress\nremote = a:\n[h]\ntype = hasher\n"
            "remote = a:Clinique vétérinaire (2024)\nhashes = md5,sha1\n[a]\ntype = local\n",
            ["union", "combine", "chunker", "compress", "hasher", "local"],
        ),
        ("\ufeff[w]\r\ntype = b2\r\naccount = 0012\r\n", ["b2"]),  # a browser's CRLF, a Windows editor's BOM
    ],
)
def test_allowed_configurations_of_each_provider(text, types):
    assert [r.type for r in parse(text)] == types


def test_wrapping_is_limited_in_depth():
    chain = (
        "".join(f"[w{i}]\ntype = alias\nremote = w{i + 1}:\n" for i in range(MAX_WRAP_DEPTH)) + "[w4]\ntype = local\n"
    )
    assert len(parse(chain)) == MAX_WRAP_DEPTH + 1
    deeper = "[w]\ntype = alias\nremote = w0:\n" + chain
    with pytest.raises(BadRequest, match="more than 4 deep"):
        parse(deeper)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[x]\nurl = http://a\n", "no valid"),
        ("type = drive\n", "before any"),
        ("", "no remote"),
        ("[x y]\ntype = drive\n", "not a remote name"),
        ("[x]\ntype = drive\n[x]\ntype = b2\n", "twice"),
        ("[x]\ntype = drive\nroot_folder_id = a\nroot_folder_id = b\n", "twice"),
        ("[x]\njust words\n", "not 'option = value'"),
        ("[x]\ntype = local\n" + "# padding\n" * 4000, "too large"),
    ],
)
def test_refused_with_a_sentence(text, words):
    with pytest.raises(BadRequest, match=words):
        parse(text)


ADMIN = {
    "host": "pacs.clinic.lan:8042",
    "content-type": "application/json",
    "authorization": "Basic " + base64.b64encode(b"clinic:pw").decode(),
}


class Svc:
    access = Access(roles={"clinic": Role.ADMIN})
    placement = None  # no scheduler deciding where the copies are

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.rclone_default = tmp / "pacs-backup-rclone.conf"

        class S:
            targets = with_default(tuple(load_targets(env or {})), self.rclone_default)

        self.settings = S()


def put(svc: Any, payload: dict[str, Any]) -> tuple[int, Any]:
    return dispatch(svc, "PUT", "rclone-config", {}, json.dumps(payload).encode(), ADMIN)


def test_saved_owner_only_and_atomically_and_answer_holds_no_secret(tmp_path):
    svc = Svc(
        tmp_path,
        {
            "BACKUP_EXTRA_TARGETS": "cloud",
            "CLOUD_RESTIC_REPOSITORY": "rclone:clinicdrive:pacs",
            "CLOUD_RESTIC_PASSWORD": "p",
        },
    )
    code, answer = put(svc, {"config": GOOD})
    assert code == 200, answer
    assert answer["remotes"] == [{"name": "clinicdrive", "type": "drive"}, {"name": "b2", "type": "b2"}]
    assert answer["targets"] == ["cloud"] and "2 remote(s)" in answer["message"]
    assert "SECRET" not in json.dumps(answer)
    path = tmp_path / "pacs-backup-rclone.conf"
    assert path.read_text() == GOOD and path.stat().st_mode & 0o777 == 0o600
    assert svc.settings.targets[0].env["RCLONE_CONFIG"] == str(path)  # the target reads that file
    listed = {"targets": ["cloud"], "remotes": answer["remotes"], "remote_names": ["clinicdrive"]}
    assert dispatch(svc, "GET", "rclone-config", {}, b"", ADMIN) == (200, listed)

    code, refused = put(svc, {"config": "[x]\ntype = sftp\nssh = /bin/sh -c evil\n"})
    assert code == 400 and "run a program" in refused["error"] and "Nothing was saved" in refused["error"]
    assert path.read_text() == GOOD  # unchanged
    assert [p.name for p in tmp_path.iterdir()] == ["pacs-backup-rclone.conf"]  # no temporary file left
    assert put(svc, {"config": ""})[0] == 400

    # A file written some other way (an older version) is listed with why it would not be used.
    path.write_text(f"[clinicdrive]\ntype = alias\nremote = {CS_WEBDAV}\n")
    code, answer = dispatch(svc, "GET", "rclone-config", {}, b"", ADMIN)
    assert code == 200 and "connection string" in answer["refused"] and "touch" not in answer["refused"]


def test_the_file_a_target_names_is_the_one_written(tmp_path):
    own = tmp_path / "installer" / "rclone.conf"
    env = {
        "BACKUP_EXTRA_TARGETS": "cloud",
        "CLOUD_RESTIC_REPOSITORY": "rclone:clinicdrive:pacs",
        "CLOUD_RESTIC_PASSWORD": "p",
        "CLOUD_RESTIC_RCLONE_CONFIG": str(own),
    }
    svc = Svc(tmp_path, env)
    assert config_file(svc.settings.targets, svc.rclone_default) == own
    assert put(svc, {"config": GOOD})[0] == 200 and own.read_text() == GOOD
    assert [r.name for r in remotes_in(own)] == ["clinicdrive", "b2"]
    code, answer = put(svc, {"config": GOOD, "target": "offsite"})
    assert code == 400 and "not a cloud-storage target" in answer["error"]


def test_save_reports_a_folder_it_cannot_write(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(Exception, match="could not be saved"):
        save(blocked / "rclone.conf", GOOD)
