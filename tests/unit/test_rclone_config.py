"""A pasted rclone configuration: checked (sections with a type, no program-running options), written
owner-only where the cloud-storage targets read it, answered with remote names and types only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pacs_backup.config import load_targets
from pacs_backup.errors import BadRequest
from pacs_backup.rclone_config import config_file, parse, remotes_in, save, with_default
from pacs_backup.routes import dispatch

GOOD = (
    "# made with rclone config\n[clinicdrive]\ntype = drive\n"
    'token = {"access_token":"SECRET-TOKEN"}\n\n[b2]\ntype = b2\nkey = SECRET-KEY\n'
)


class Svc:
    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.rclone_default = tmp / "pacs-backup-rclone.conf"

        class S:
            targets = with_default(tuple(load_targets(env or {})), self.rclone_default)

        self.settings = S()


def put(svc: Any, payload: dict[str, Any]) -> tuple[int, Any]:
    return dispatch(svc, "PUT", "rclone-config", {}, json.dumps(payload).encode())


def test_parse_names_remotes_and_types():
    assert [(r.name, r.type) for r in parse(GOOD)] == [("clinicdrive", "drive"), ("b2", "b2")]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[x]\ntype = sftp\nssh = ssh -o ProxyCommand=evil host\n", "run a program"),
        ("[x]\ntype = webdav\nbearer_token_command = curl evil\n", "run a program"),
        ("[x]\ntype = sftp\nmd5sum_command = rm -rf /\n", "run a program"),
        ("[x]\ntype = sftp\nserver_command = /bin/sh\n", "run a program"),
        ("[x]\ntype = s3\npassword_command = cat /etc/shadow\n", "run a program"),
        ("[default]\ncredential_process = /bin/evil\ntype = s3\n", "run a program"),
        ("[x]\ntype = s3\nshared_credentials_file = /tmp/x\n", "run a program"),
        ("[x]\nurl = http://a\n", "no valid"),
        ("type = drive\n", "before any"),
        ("", "no remote"),
        ("[x y]\ntype = drive\n", "not a remote name"),
        ("[x]\ntype = drive\n[x]\ntype = b2\n", "twice"),
        ("[x]\njust words\n", "not 'option = value'"),
        ("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nabc", "encrypted"),
        ("[x]\ntype = local\n" + "# padding\n" * 4000, "too large"),
    ],
)
def test_refused_with_a_sentence(text, words):
    with pytest.raises(BadRequest, match=words):
        parse(text)


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
    assert dispatch(svc, "GET", "rclone-config", {}, b"") == (200, {"targets": ["cloud"], "remotes": answer["remotes"]})

    code, refused = put(svc, {"config": "[x]\ntype = sftp\nssh = /bin/sh -c evil\n"})
    assert code == 400 and "run a program" in refused["error"] and "nothing was saved" in refused["error"]
    assert path.read_text() == GOOD  # unchanged
    assert [p.name for p in tmp_path.iterdir()] == ["pacs-backup-rclone.conf"]  # no temporary file left
    assert put(svc, {"config": ""})[0] == 400


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
