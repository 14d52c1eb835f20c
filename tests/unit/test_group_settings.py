"""A clinic in a group: its GROUP_* settings, the group store's key layout and its policies (settings only;
what the S3 server does with the policies is checked on a real one in tests/integration/test_group_copy.py)."""

from __future__ import annotations

import pytest

from pacs_backup.cli.group import clinic_access_key
from pacs_backup.cli.main import parse
from pacs_backup.contracts.errors import ConfigError
from pacs_backup.replication.group_queue import group_key
from pacs_backup.settings.config import load_settings
from pacs_backup.settings.group import load_group
from pacs_backup.settings.group_policy import clinic_policy, group_reader_policy

CLINIC = {
    "GROUP_CLINIC_ID": "north",
    "GROUP_STORE_ENDPOINT": "https://s3.group.example:9000",
    "GROUP_STORE_BUCKET": "group-pacs",
    "GROUP_STORE_ACCESS_KEY": "grp-north",
    "GROUP_STORE_SECRET_KEY": "s" * 40,
}


def test_group_settings_are_none_without_a_clinic_id():
    assert load_group({}) is None
    assert load_group({"GROUP_STORE_ROOT_USER": "root"}) is None  # the admin's machine


def test_group_settings_from_the_pasted_lines(tmp_path):
    token = tmp_path / "token"
    token.write_text("t" * 43 + "\n")
    g = load_group(
        {**CLINIC, "GROUP_SERVICE_URL": "https://group.example:8443/", "GROUP_SERVICE_TOKEN_FILE": str(token)}
    )
    assert g is not None
    assert (g.clinic_id, g.store.endpoint, g.store.secure, g.store.bucket, g.store.prefix) == (
        "north",
        "s3.group.example:9000",
        True,
        "group-pacs",
        "north",
    )
    assert (g.store.lock_mode, g.store.lock_days, g.heartbeat_s, g.manifest_s) == ("GOVERNANCE", 30, 60, 300)
    assert g.service_url == "https://group.example:8443" and g.service_token == "t" * 43
    assert "s" * 40 not in repr(g) and "t" * 43 not in repr(g)  # no secret in a log of the settings


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"GROUP_CLINIC_ID": "North"}, "GROUP_CLINIC_ID='North' is not a clinic id"),
        ({"GROUP_CLINIC_ID": "n"}, "is not a clinic id"),
        ({"GROUP_CLINIC_ID": "../b"}, "is not a clinic id"),
        ({"GROUP_STORE_ENDPOINT": ""}, "GROUP_STORE_ENDPOINT is not set"),
        ({"GROUP_STORE_ENDPOINT": "ftp://x"}, "GROUP_STORE_ENDPOINT='ftp://x' is not a valid address"),
        ({"GROUP_STORE_SECRET_KEY": ""}, "GROUP_STORE_SECRET_KEY is not set"),
        ({"GROUP_STORE_BUCKET": "Group"}, "GROUP_STORE_BUCKET='Group' is not a valid bucket name"),
        ({"GROUP_LOCK_MODE": "forever"}, "GROUP_LOCK_MODE='FOREVER' is not valid"),
        ({"GROUP_HEARTBEAT_SECONDS": "0"}, "GROUP_HEARTBEAT_SECONDS='0' is out of range"),
        ({"GROUP_SERVICE_URL": "https://g.example"}, "GROUP_SERVICE_TOKEN is not set"),
        ({"GROUP_SERVICE_URL": "g.example", "GROUP_SERVICE_TOKEN": "t"}, "must start with https://"),
        ({"GROUP_SERVICE_TOKEN": "t"}, "GROUP_SERVICE_URL is not"),
    ],
)
def test_each_bad_group_setting_gets_one_sentence_naming_it(change, words):
    with pytest.raises(ConfigError) as err:
        load_group({**CLINIC, **change})
    assert words in str(err.value)


def test_the_group_is_part_of_the_engine_settings(tmp_path):
    env = {"MINIO_ENDPOINT": "127.0.0.1:9000", "MINIO_ACCESS_KEY": "plugin", "MINIO_SECRET_KEY": "x" * 20, **CLINIC}
    s = load_settings(tmp_path / "db.sqlite", env)
    assert s.group is not None and s.group.clinic_id == "north"
    assert load_settings(tmp_path / "db.sqlite", {k: v for k, v in env.items() if "GROUP" not in k}).group is None


def test_group_keys_are_the_local_layout_below_the_clinic_id():
    assert group_key("dicom/1.2/1.2.3/1.2.3.4.dcm", "", "north") == "north/dicom/1.2/1.2.3/1.2.3.4.dcm"
    assert group_key("site-a/dicom/1.2/3/4.v2.dcm", "site-a", "north") == "north/dicom/1.2/3/4.v2.dcm"


def test_group_clinic_access_keys_fit_minio_and_differ_for_long_ids():
    assert clinic_access_key("north") == "grp-north"
    long_a, long_b = "riverside-veterinary-a", "riverside-veterinary-b"
    assert len(clinic_access_key(long_a)) <= 20 and clinic_access_key(long_a) != clinic_access_key(long_b)


def test_group_clinic_policy_allows_only_its_prefix_and_denies_deleting():
    policy = clinic_policy("group-pacs", "north")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ClinicCopies"]["Resource"] == ["arn:aws:s3:::group-pacs/north/*"]
    assert "s3:PutObject" in by_sid["ClinicCopies"]["Action"] and "s3:GetObject" in by_sid["ClinicCopies"]["Action"]
    assert by_sid["ClinicListsItsOwn"]["Condition"] == {"StringLike": {"s3:prefix": ["north/*"]}}
    never = by_sid["NeverDeleteOrUnlock"]
    assert never["Effect"] == "Deny"
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= set(never["Action"])
    allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    # the local plugin account's writes (an object, its retention: only ever lengthened), nothing else
    assert {a for a in allowed if a.startswith("s3:Put")} <= {
        "s3:PutObject",
        "s3:PutObjectRetention",
        "s3:PutObjectTagging",
    }
    assert not any("Delete" in a or "Bypass" in a for a in allowed)


def test_group_reader_policy_reads_everything_and_writes_nothing():
    policy = group_reader_policy("group-pacs")
    allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert allowed == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject"}


def test_group_command_and_group_as_a_restore_source_parse():
    a = parse(["group", "add-clinic", "north"])
    assert (a.command.name, a.action, a.clinic) == ("group", "add-clinic", "north")
    assert parse(["disaster-recovery", "--from", "group"]).source == "group"
    assert parse(["restore-study", "--from", "group", "1.2.3"]).source == "group"
    with pytest.raises(SystemExit):
        parse(["group"])  # an action is required
