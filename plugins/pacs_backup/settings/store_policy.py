"""The object store accounts' IAM policies: what the plugin and the dashboard may do on the bucket, and
nothing more (least privilege on any S3 server with IAM policies). :mod:`store_setup` gives them to the
accounts it makes; ``scripts/store-setup --print-policy`` prints the plugin's for another S3 service.
"""

from __future__ import annotations

from typing import Any

# What the plugin calls (object_store.py) and nothing more. GetBucketLocation: the client asks for the
# bucket's region when MINIO_REGION is not set. The retention and legal hold reads let a technician
# using the same keys (restore scripts) see how long a copy is kept. PutObjectRetention: each copy is
# written with its own retention (until the retention rule lets its study go), which S3 checks as this
# action; without s3:BypassGovernanceRetention (refused below) it can only lengthen a retention, never
# shorten or remove one.
PLUGIN_BUCKET_ACTIONS = (
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
)
PLUGIN_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectRetention",
    "s3:PutObjectRetention",
    "s3:GetObjectLegalHold",
)
# Refused explicitly, so that no other policy given to the account (a group's, say) can grant them.
# DeleteObject too: the plugin never deletes, and on a versioned bucket a delete marker hides a copy
# from restores and drills even though its data is kept. Lifecycle rules could expire old versions.
DENIED_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucket",
)

# The dashboard's account lists a study's copies and reads one to draw it while the PACS is down; it never
# writes, nor reads an earlier version (what was overwritten or hidden, e.g. a study removed on request):
# S3 checks a GET of a version as s3:GetObject, so the version id in the request is what is refused.
READER_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
READER_OBJECT_ACTIONS = ("s3:GetObject",)
READER_DENIED = ("s3:PutObject", "s3:PutObjectRetention", "s3:ListBucketVersions", *DENIED_ACTIONS)


def policy_name(bucket: str) -> str:
    """The name of the plugin's policy for ``bucket`` (one per bucket: several sites may share a store)."""
    return f"pacs-backup-plugin-{bucket}"


def _policy(
    bucket: str, who: str, allowed: tuple[tuple[str, ...], tuple[str, ...]], never: tuple[str, list[str]]
) -> dict[str, Any]:
    """An IAM policy on ``bucket`` only: ``allowed`` (actions on the bucket, actions on its objects) and
    ``never`` (a statement's Sid, and actions refused on both)."""
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": f"{who}Bucket", "Effect": "Allow", "Action": list(allowed[0]), "Resource": [resources[0]]},
            {"Sid": f"{who}Copies", "Effect": "Allow", "Action": list(allowed[1]), "Resource": [resources[1]]},
            {"Sid": never[0], "Effect": "Deny", "Action": never[1], "Resource": resources},
        ],
    }


def plugin_policy(bucket: str) -> dict[str, Any]:
    """The plugin's IAM policy on ``bucket`` only (JSON-ready)."""
    allowed = (PLUGIN_BUCKET_ACTIONS, PLUGIN_OBJECT_ACTIONS)
    return _policy(bucket, "Plugin", allowed, ("NeverDeleteOrUnlock", list(DENIED_ACTIONS)))


def reader_policy(bucket: str, version_action: bool = False) -> dict[str, Any]:
    """The dashboard's read-only IAM policy on ``bucket`` (JSON-ready).

    ``version_action``: the store checks a read of an earlier version as s3:GetObjectVersion (AWS, Versity
    S3 Gateway, which refuses the version-id condition on s3:GetObject), so that action is refused instead.
    """
    if version_action:
        never = ("NeverWrite", [*READER_DENIED, "s3:GetObjectVersion"])
        return _policy(bucket, "Reader", (READER_BUCKET_ACTIONS, READER_OBJECT_ACTIONS), never)
    policy = _policy(bucket, "Reader", (READER_BUCKET_ACTIONS, READER_OBJECT_ACTIONS), ("NeverWrite", [*READER_DENIED]))
    old = {
        "Sid": "NeverOldVersions",
        "Effect": "Deny",
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"],
    }
    policy["Statement"].append({**old, "Condition": {"StringLike": {"s3:versionid": "?*"}}})
    return policy
