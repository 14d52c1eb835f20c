"""Routes for sending a study to a referring clinic: the clinics known, what was asked, and a new request."""

from __future__ import annotations

import re
import time
from typing import Any

from pacs_backup.contracts.errors import NotFound

from . import http_input as check
from .answers import Answer, EngineParts, Request


def referrals(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """``{"peers": [{name, label, shown, status}], "requests": [ReferralDoc + label]}``, optionally for one study."""
    study = check.uid(req.query["study"]) if req.query.get("study") else None
    peers: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    for name, r in svc.referrals.items():
        peers.append({"name": name, "label": r.peer.label, "shown": r.peer.shown, "status": r.sender.status()})
        requests += [{**doc, "label": r.peer.label} for doc in r.queue.requests(study)]
    requests.sort(key=lambda d: -float(d["requested_at"]))
    return 200, {"peers": peers, "requests": requests}


def send(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """Queue a study for a referring clinic: ``{"peer": name, "study_uid": uid, "requested_by": user}``."""
    payload = check.json_object(req.body)
    peer = check.name(check.text_field(payload, "peer", required=True, max_chars=64), "peer") or ""
    study = check.uid(check.text_field(payload, "study_uid", required=True, max_chars=128) or "")
    user = " ".join((check.text_field(payload, "requested_by", max_chars=128) or "an Orthanc user").split())
    referral = svc.referrals.get(peer)
    if referral is None:
        known = ", ".join(svc.referrals) or "none is set up (REFERRAL_PEERS)"
        raise NotFound(f"There is no referring clinic {peer!r}; known: {known}.")
    queued = referral.queue.request(study, user, time.time())
    return 202, {"peer": peer, "study_uid": study, "queued": queued}
