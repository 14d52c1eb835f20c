from pathlib import Path

import pytest

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.config import load_settings

BASE = {"MINIO_ENDPOINT": "127.0.0.1:9000", "MINIO_ACCESS_KEY": "backup", "MINIO_SECRET_KEY": "s3cr3t-value"}


def load(**over):
    env = {**BASE, **over}
    return load_settings(Path("/data/outbox.sqlite"), {k: v for k, v in env.items() if v is not None})


def test_config_defaults():
    s = load()
    assert s.enabled and s.workers == 4 and s.store.bucket == "pacs-backup"
    assert s.store.endpoint == "127.0.0.1:9000" and not s.store.secure
    assert s.store.lock_mode == "GOVERNANCE" and s.store.lock_days == 30
    assert s.outbox_path == Path("/data/outbox.sqlite")


@pytest.mark.parametrize(
    ("over", "names"),
    [
        ({"MINIO_ENDPOINT": None}, "MINIO_ENDPOINT"),
        ({"MINIO_SECRET_KEY": None}, "MINIO_SECRET_KEY"),
        ({"BACKUP_WORKERS": "many"}, "BACKUP_WORKERS"),
        ({"BACKUP_WORKERS": "0"}, "BACKUP_WORKERS"),
        ({"BACKUP_ENABLED": "perhaps"}, "BACKUP_ENABLED"),
        ({"MINIO_BUCKET": "Bad_Bucket"}, "MINIO_BUCKET"),
        ({"BACKUP_LOCK_MODE": "forever"}, "BACKUP_LOCK_MODE"),
        ({"MINIO_ENDPOINT": "ftp://host:21"}, "MINIO_ENDPOINT"),
        ({"BACKUP_RETRY_CAP_SECONDS": "0.5", "BACKUP_RETRY_BASE_SECONDS": "5"}, "BACKUP_RETRY_CAP_SECONDS"),
    ],
)
def test_config_error_names_the_variable(over, names):
    with pytest.raises(ConfigError) as err:
        load(**over)
    assert names in str(err.value)
    assert "s3cr3t-value" not in str(err.value)


def test_config_secret_from_file(tmp_path):
    f = tmp_path / "secret"
    f.write_text("from-file\n")
    s = load(MINIO_SECRET_KEY=None, MINIO_SECRET_KEY_FILE=str(f))
    assert s.store.secret_key == "from-file"


def test_config_secret_file_problems_are_explained(tmp_path):
    with pytest.raises(ConfigError, match=r"MINIO_SECRET_KEY_FILE=.*cannot be read"):
        load(MINIO_SECRET_KEY=None, MINIO_SECRET_KEY_FILE=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="both set"):
        load(MINIO_SECRET_KEY_FILE=str(tmp_path / "x"))
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        load(MINIO_SECRET_KEY=None, MINIO_SECRET_KEY_FILE=str(tmp_path / "empty"))


def test_config_endpoint_as_url():
    s = load(MINIO_ENDPOINT="https://s3.example.internal:443")
    assert s.store.endpoint == "s3.example.internal:443" and s.store.secure
    assert load(MINIO_ENDPOINT="http://10.0.0.5:9000").store.secure is False


def test_config_repr_hides_secrets():
    s = load()
    assert "s3cr3t-value" not in repr(s) and "s3cr3t-value" not in repr(s.store)


def test_config_targets_offsite_and_extra(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x" * 20)
    s = load(
        RESTIC_REPOSITORY="rest:http://h:8000/c",
        RESTIC_PASSWORD_FILE=str(pw),
        BACKUP_EXTRA_TARGETS="usb",
        USB_RESTIC_REPOSITORY="/mnt/usb/repo",
        USB_RESTIC_PASSWORD_FILE=str(pw),
        USB_RESTIC_FORGET="true",
        USB_RESTIC_KEEP="daily=7",
    )
    assert [t.name for t in s.targets] == ["offsite", "usb"]
    assert s.targets[1].forget and s.targets[1].keep == {"daily": "7"} and not s.targets[0].forget


@pytest.mark.parametrize(
    ("over", "name"),
    [
        ({"RESTIC_REPOSITORY": "rest:http://h/c"}, "RESTIC_PASSWORD_FILE"),
        ({"RESTIC_REPOSITORY": "rest:http://h/c", "RESTIC_PASSWORD": "p", "RESTIC_KEEP": "forever"}, "RESTIC_KEEP"),
        (
            {"RESTIC_REPOSITORY": "rest:http://h/c", "RESTIC_PASSWORD": "p", "RESTIC_RETRY_LOCK": "soon"},
            "RESTIC_RETRY_LOCK",
        ),
        ({"BACKUP_EXTRA_TARGETS": "usb"}, "USB_RESTIC_REPOSITORY"),
    ],
)
def test_config_target_errors_name_the_variable(over, name):
    with pytest.raises(ConfigError, match=name):
        load(**over)
