"""The group service's delivery API (group mode only): clinic A's appliance pulls the studies brought to it.

- ``GET /group/api/deliveries``: the deliveries this clinic has to fetch -> ``{"deliveries": [...]}``;
- ``GET /group/api/deliveries/<id>/instances``: the study's objects -> ``{"instances": [{key, sha256, size}]}``;
- ``GET /group/api/deliveries/<id>/files?key=``: one object's exact bytes, read from the other clinic's prefix
  with the group reader's key and checked against its sha256 (409 when they do not match);
- ``POST /group/api/deliveries/<id>/done``: the clinic's report -> the delivery's state and sentence.

Called with the clinic's token (``Authorization: Bearer``), checked as views/group_api.py does; a delivery of
another clinic is a 404. Answers are JSON (the files excepted); a refusal has a sentence in ``error``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from pacs_backup.contracts.errors import NotFound
from pacs_backup.sources.base import CopyDamaged, SourceUnavailable

from .. import deps
from ..group import deliveries, drill_log
from ..group.copies import read_checked, reader_store, study_instances
from ..group.deliveries import Delivery
from ..group.service import parts
from .group_api import BAD_TOKEN, answer, clinic_of_request, token_api_errors

log = logging.getLogger(__name__)
bp = Blueprint("group_deliveries_api", __name__, url_prefix="/group/api/deliveries")
NO_READER = "The group service has no reader key for the group store (GROUP_READER_ACCESS_KEY); it cannot deliver."


token_api_errors(bp, "group delivery API")


def _mine(delivery_id: int) -> tuple[str | None, Delivery | None, tuple[Response, int] | None]:
    clinic = clinic_of_request()
    if clinic is None:
        return None, None, answer(401, BAD_TOKEN)
    found = deliveries.get(deps.db(), delivery_id)
    if found is None or found["target_clinic"] != clinic:
        return clinic, None, answer(404, f"There is no delivery {delivery_id} for clinic {clinic}.")
    return clinic, found, None


@bp.get("")
def listing() -> Response | tuple[Response, int]:
    clinic = clinic_of_request()
    if clinic is None:
        return answer(401, BAD_TOKEN)
    group = parts()
    with group.catalog.connection() as conn:  # the clinic's last heartbeat: its restore tests for the month
        row = conn.execute("SELECT last_status FROM clinics WHERE id = %s", (clinic,)).fetchone()
    drill_log.note(deps.db(), clinic, row[0] if row else None)
    return jsonify({"deliveries": deliveries.for_clinic(deps.db(), clinic)})


@bp.get("/<int:delivery_id>/instances")
def instances(delivery_id: int) -> Response | tuple[Response, int]:
    _, found, refused = _mine(delivery_id)
    if refused or found is None:
        return refused or answer(404, "No such delivery.")
    group = parts()
    if group.settings.store is None:
        return answer(503, NO_READER)
    try:
        listed = study_instances(
            group.catalog, reader_store(group.settings.store), found["source_clinic"], found["study_uid"]
        )
    except NotFound as exc:
        return answer(404, str(exc))
    except SourceUnavailable as exc:
        return answer(503, str(exc))
    return jsonify({"instances": [{"key": i["ref"], "sha256": i["sha256"], "size": i["size"]} for i in listed]})


@bp.get("/<int:delivery_id>/files")
def files(delivery_id: int) -> Response | tuple[Response, int]:
    _, found, refused = _mine(delivery_id)
    if refused or found is None:
        return refused or answer(404, "No such delivery.")
    group = parts()
    if group.settings.store is None:
        return answer(503, NO_READER)
    key = request.args.get("key", "")
    store = reader_store(group.settings.store)
    try:
        listed = study_instances(group.catalog, store, found["source_clinic"], found["study_uid"])
        wanted = next((i for i in listed if i["ref"] == key), None)
        if wanted is None:
            return answer(404, "That object is not part of this delivery's study.")
        data = read_checked(store, key, wanted["sha256"])
    except NotFound as exc:
        return answer(404, str(exc))
    except CopyDamaged as exc:
        return answer(409, str(exc))
    except SourceUnavailable as exc:
        return answer(503, str(exc))
    resp = current_app.response_class(data, 200, content_type="application/dicom")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/<int:delivery_id>/done")
def done(delivery_id: int) -> Response | tuple[Response, int]:
    _, found, refused = _mine(delivery_id)
    if refused or found is None:
        return refused or answer(404, "No such delivery.")
    if found["state"] in ("delivered", "failed"):
        return jsonify({"delivery": found})  # a report sent twice changes nothing
    try:
        finished = deliveries.finish(deps.db(), found, request.get_json(force=True, silent=True))
    except deliveries.Refused as exc:
        return answer(400, str(exc))
    return jsonify({"delivery": finished})
