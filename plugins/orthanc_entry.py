"""Orthanc entry module: the only code that imports ``orthanc``.

It registers the change callback (which only enqueues), the ``/backup/status`` REST route, and
forwards start/stop to :class:`pacs_backup.api.service.BackupService`. Nothing raised here may reach
Orthanc: ingest must never be disturbed by the backup.
"""

import json
import logging
import os
from pathlib import Path

import orthanc
from pacs_backup.api.routes import Binary, WithHeaders, dispatch
from pacs_backup.api.service import BackupService
from pacs_backup.contracts.errors import SourceError, SourceGone
from pacs_backup.contracts.redact import mask_url_credentials


class _OrthancLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = "pacs-backup: " + self.format(record)
            if record.levelno >= logging.ERROR:
                orthanc.LogError(line)
            elif record.levelno >= logging.WARNING:
                orthanc.LogWarning(line)
            else:
                orthanc.LogInfo(line)
        except Exception:  # noqa: BLE001, S110 - logging must never raise into Orthanc
            pass


_UNKNOWN_RESOURCE = 17


def _rest_get(uri: str) -> bytes:
    """In-process REST GET through the SDK; maps Orthanc errors to the engine's errors."""
    try:
        return bytes(orthanc.RestApiGet(uri))
    except orthanc.OrthancException as exc:
        # args are (error code, description); 17 is UnknownResource (deleted meanwhile).
        code = exc.args[0] if exc.args else None
        if code == _UNKNOWN_RESOURCE:
            raise SourceGone(f"Orthanc has no {uri}.") from None
        raise SourceError(f"Orthanc could not answer {uri}: {exc}") from None


def _rest_post(uri: str, body: bytes) -> bytes:
    """In-process REST POST (restores into this Orthanc)."""
    try:
        return bytes(orthanc.RestApiPost(uri, body))
    except orthanc.OrthancException as exc:
        raise SourceError(f"Orthanc refused {uri}: {exc}") from None


def _rest_put(uri: str, body: bytes) -> bytes:
    """In-process REST PUT (declaring the cloud PACS as a DICOM modality)."""
    try:
        return bytes(orthanc.RestApiPut(uri, body))
    except orthanc.OrthancException as exc:
        raise SourceError(f"Orthanc refused {uri}: {exc}") from None


def _storage_dir() -> Path:
    config = json.loads(orthanc.GetConfiguration())
    return Path(config.get("StorageDirectory", "OrthancStorage"))


_handler = _OrthancLogHandler()
_handler.setFormatter(logging.Formatter("%(message)s"))
_root = logging.getLogger("pacs_backup")
_root.addHandler(_handler)
_root.setLevel(logging.INFO)
_root.propagate = False


def on_change(change_type, level, resource_id):  # type: ignore[no-untyped-def]
    try:
        if change_type == orthanc.ChangeType.NEW_INSTANCE:
            service.on_new_instance(resource_id)
        elif change_type == orthanc.ChangeType.ORTHANC_STARTED:
            service.start()
        elif change_type == orthanc.ChangeType.ORTHANC_STOPPED:
            service.stop()
    except Exception:
        logging.getLogger("pacs_backup").exception("change callback failed")


def on_backup_request(output, uri, **request):  # type: ignore[no-untyped-def]
    """Every route under /backup/ (status, runs, snapshots, drills, studies): the router answers each."""
    try:
        # Orthanc has checked the password; the headers (lower-case names) say who called and from where.
        headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
        code, payload = dispatch(
            service,
            request.get("method", "GET"),
            request["groups"][0],
            request.get("get") or {},
            request.get("body") or b"",
            headers,
        )
        if isinstance(payload, Binary):
            output.AnswerBuffer(payload.data, payload.mime)
            return
        if isinstance(payload, WithHeaders):
            for name, value in payload.headers.items():
                output.SetHttpHeader(name, value)
            payload = payload.payload
        body = mask_url_credentials(json.dumps(payload))
    except Exception:  # a sentence instead of a crash or a Python error text; the traceback goes to the log
        logging.getLogger("pacs_backup").exception("request %s failed", uri[:200])
        code, body = (
            500,
            json.dumps({"error": "The backup plugin could not answer this request; Orthanc's log has the details."}),
        )
    if code < 300:
        output.AnswerBuffer(body, "application/json")
    else:
        _send_status(output, code, body)


def _send_status(output, code: int, body: str) -> None:  # type: ignore[no-untyped-def]
    """An error status with its JSON sentence: orthanc-python 4.0 takes the body and its size in bytes,
    5.0 the body alone."""
    data = body.encode()
    for args in ((code, body, len(data)), (code, data), (code, body)):
        try:
            output.SendHttpStatus(*args)
            return
        except TypeError:
            continue
    output.SendHttpStatus(code)  # no wrapper took a body: the status alone


def on_received_instance(received_dicom, origin):  # type: ignore[no-untyped-def]
    """Refuse pathological files before Orthanc stores them (they would crash or stall it when read).
    Fails closed: a file that could not be checked is refused, with the reason in the log."""
    try:
        reason = service.screen_instance(bytes(received_dicom))
    except Exception:  # screen_instance never raises; if it ever did, the file is refused, not kept
        logging.getLogger("pacs_backup").exception("instance screen failed")
        reason = "Refused a DICOM file that the backup plugin could not check; Orthanc's log has the details."
    if reason is None:
        return orthanc.ReceivedInstanceAction.KEEP_AS_IS, None
    logging.getLogger("pacs_backup").error("%s", reason)
    return orthanc.ReceivedInstanceAction.DISCARD, None


def _configuration() -> str:
    return str(orthanc.GetConfiguration())


# Patient data stays owner-only: files Orthanc and the plugin create from now on (images, index, queue,
# manifests) get mode 0600, folders 0700, whatever umask the service was started with.
os.umask(0o077)
for _folder in {_storage_dir(), Path(json.loads(orthanc.GetConfiguration()).get("IndexDirectory", _storage_dir()))}:
    try:
        if _folder.is_dir() and _folder.stat().st_uid == os.getuid():
            _folder.chmod(0o700)
    except OSError:
        logging.getLogger("pacs_backup").warning("could not make %s owner-only", _folder)

service = BackupService(_rest_get, _storage_dir(), config_json=_configuration, post=_rest_post, put=_rest_put)
orthanc.RegisterOnChangeCallback(on_change)
orthanc.RegisterRestCallback("/backup/(.*)", on_backup_request)
orthanc.RegisterReceivedInstanceCallback(on_received_instance)
