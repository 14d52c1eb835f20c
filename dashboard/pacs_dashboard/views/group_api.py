"""The group service's API (group mode only): what clinics push, and the group's status.

- ``POST /group/api/catalog``: a clinic's catalog rows, ``{"clinic": id, "entries": [...]}`` -> ``{"accepted": n}``;
- ``POST /group/api/heartbeat``: a clinic's status document, ``{"clinic": id, "status": {...}}``;
- ``GET /group/api/status``: every clinic's last heartbeat, its age and whether it has gone quiet (group admin).

The two POSTs are made by clinics' appliances with their token (``Authorization: Bearer``), not a login:
security.py lets them through its login and form checks (TOKEN_ENDPOINTS). Answers are JSON; a refusal has a
sentence in ``error``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..group.catalog import CatalogUnavailable
from ..group.heartbeats import MAX_STATUS_BYTES, group_status, record, status_size
from ..group.ingest import ForeignRow, InvalidBatch, check_batch, ingest
from ..group.service import parts
from ..group.tokens import clinic_of

log = logging.getLogger(__name__)
bp = Blueprint("group_api", __name__, url_prefix="/group/api")
MAX_BODY = 8 * 1024 * 1024  # a batch of MAX_ENTRIES rows fits well within
BAD_TOKEN = "The clinic token is missing, unknown or revoked."  # noqa: S105 - a sentence, not a secret


def answer(code: int, message: str) -> tuple[Response, int]:
    """An error of the clinics' token API as JSON with its sentence (401s name the Bearer scheme)."""
    resp = jsonify({"error": message})
    if code == 401:
        resp.headers["WWW-Authenticate"] = "Bearer"
    return resp, code


def token_api_errors(blueprint: Blueprint, what: str) -> None:
    """Every error of a token API blueprint as :func:`answer`: HTTP errors with their description, the catalog
    down as 503, anything else as 500 with its traceback in the log (``what`` names the API there)."""

    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return answer(exc.code or 500, exc.description or "That did not work.")

    def catalog_down(exc: CatalogUnavailable) -> tuple[Response, int]:
        return answer(503, str(exc))

    def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("%s error", what)  # the traceback stays in the log
        return answer(500, "The group service could not do that. Its log has the details.")

    blueprint.register_error_handler(HTTPException, http_error)
    blueprint.register_error_handler(CatalogUnavailable, catalog_down)
    blueprint.register_error_handler(Exception, unexpected)


def clinic_of_request() -> str | None:
    """The clinic whose token the request carries (None: missing, unknown or revoked)."""
    return clinic_of(parts().catalog, request.headers.get("Authorization", ""))


@bp.before_request
def larger_bodies() -> None:
    if request.endpoint == "group_api.catalog":
        request.max_content_length = MAX_BODY


token_api_errors(bp, "group API")


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    """As token_api_errors', and a body too large for the catalog's batches says so."""
    if isinstance(exc, RequestEntityTooLarge):
        return answer(413, f"The request is larger than {MAX_BODY // (1024 * 1024)} MB; send fewer entries at a time.")
    return answer(exc.code or 500, exc.description or "That did not work.")


def _body() -> Any:
    """The request's JSON (None when it is not JSON)."""
    return request.get_json(force=True, silent=True)


@bp.post("/catalog")
def catalog() -> tuple[Response, int]:
    clinic = clinic_of_request()
    if clinic is None:
        return answer(401, BAD_TOKEN)
    body = _body()
    if body is None:
        return answer(400, 'The request is not JSON; send {"clinic": ..., "entries": [...]}.')
    try:
        entries = check_batch(body, clinic)
    except InvalidBatch as exc:
        return answer(400, str(exc))
    except ForeignRow as exc:
        return answer(403, str(exc))
    return jsonify({"accepted": ingest(parts().catalog, clinic, entries)}), 200


@bp.post("/heartbeat")
def heartbeat() -> tuple[Response, int]:
    clinic = clinic_of_request()
    if clinic is None:
        return answer(401, BAD_TOKEN)
    body = _body()
    if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
        return answer(400, 'The heartbeat is not JSON like {"clinic": ..., "status": {...}}.')
    if body.get("clinic") != clinic:
        return answer(403, "The heartbeat names another clinic than the one this token belongs to.")
    try:
        size = status_size(body["status"])
    except ValueError:
        return answer(400, "The status document holds what JSON cannot carry (NaN, Infinity, a NUL character).")
    if size > MAX_STATUS_BYTES:
        return answer(400, f"The status document is larger than {MAX_STATUS_BYTES // 1024} KB.")
    record(parts().catalog, clinic, body["status"])
    return jsonify({"recorded": True, "at": time.time()}), 200


@bp.get("/status")
def status() -> Response:
    group = parts()
    minutes = group.settings.quiet_minutes
    return jsonify({"quiet_minutes": minutes, "clinics": group_status(group.catalog, minutes)})
