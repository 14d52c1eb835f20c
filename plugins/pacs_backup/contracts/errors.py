"""Domain errors. Each carries a message a person can act on; logs keep the traceback."""


class BackupError(Exception):
    """Base class: ``str(err)`` is a sentence for clinic staff or a technician."""


class ConfigError(BackupError):
    """A configuration value is missing or invalid; the message names the variable."""


class StoreUnavailable(BackupError):
    """The object store cannot be reached (network, DNS, server down). Retried without counting."""


class StoreError(BackupError):
    """The object store answered but refused or mangled an operation (auth, quota, checksum)."""


class SourceGone(BackupError):
    """The instance no longer exists in Orthanc (deleted before it was copied)."""


class SourceError(BackupError):
    """Orthanc could not give us the instance right now (retried with backoff)."""


class CorruptInstance(BackupError):
    """The instance can be read but lacks what a backup needs (e.g. its UIDs). Quarantined."""


class NotFound(BackupError):
    """What was asked for (a study, a patient, a snapshot) is not in that copy."""


class BadRequest(BackupError):
    """A request is malformed (answered 400 with this sentence)."""


class Busy(BackupError):
    """The request is fine but too much is waiting already: ask again later (HTTP 429)."""


class CloudUnavailable(BackupError):
    """The cloud PACS cannot be reached (network, DNS, server down). Retried without counting."""


class CloudRefused(BackupError):
    """The cloud PACS answered, but refused or did not store what was sent (retried with backoff)."""


class CloudNotFound(CloudRefused):
    """The cloud PACS has no such resource (HTTP 404)."""
