"""The group store's IAM policies: what a clinic's keys and the group service's reader key may do.

A clinic writes and reads only under ``<clinic-id>/`` (the same object actions as the local plugin
account, :mod:`.store_policy`), lists only that prefix, and never deletes, bypasses retention or reads
another clinic. The group service's reader reads and lists the whole bucket and writes nothing.
``pacs-backup group add-clinic`` / ``add-reader`` give them to the accounts they make; the S3 server
enforces them.
"""

from __future__ import annotations

from typing import Any

from .store_policy import DENIED_ACTIONS, PLUGIN_OBJECT_ACTIONS, reader_policy

# Read by the clinic's client to check the bucket's protection (never changed with these keys).
CLINIC_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration")
CLINIC_LIST_ACTIONS = ("s3:ListBucket", "s3:ListBucketVersions")


def clinic_policy_name(bucket: str, clinic: str) -> str:
    return f"pacs-backup-group-{bucket}-{clinic}"


def reader_policy_name(bucket: str) -> str:
    return f"pacs-backup-group-reader-{bucket}"


def clinic_policy(bucket: str, clinic: str) -> dict[str, Any]:
    """The IAM policy of clinic ``clinic``'s keys on the group bucket (JSON-ready)."""
    arn = f"arn:aws:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ClinicBucket", "Effect": "Allow", "Action": list(CLINIC_BUCKET_ACTIONS), "Resource": [arn]},
            {
                "Sid": "ClinicListsItsOwn",
                "Effect": "Allow",
                "Action": list(CLINIC_LIST_ACTIONS),
                "Resource": [arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{clinic}/*"]}},
            },
            {
                "Sid": "ClinicCopies",
                "Effect": "Allow",
                "Action": list(PLUGIN_OBJECT_ACTIONS),
                "Resource": [f"{arn}/{clinic}/*"],
            },
            {
                "Sid": "NeverDeleteOrUnlock",
                "Effect": "Deny",
                "Action": list(DENIED_ACTIONS),
                "Resource": [arn, f"{arn}/*"],
            },
        ],
    }


def group_reader_policy(bucket: str) -> dict[str, Any]:
    """The group service's reader: reads and lists every clinic's objects, writes nothing (JSON-ready)."""
    return reader_policy(bucket)
