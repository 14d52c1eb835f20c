"""A stand-in DICOMweb service in the shapes of the dashboard's /copies/<source>/dicom-web (QIDO-RS series and
instances, WADO-RS instances as multipart/related, GET /copies?study=), with a page rendering the viewer template
on it as another DICOMweb root; and a Flask app served from a thread for a browser to open."""

from __future__ import annotations

import json
import threading

from flask import Blueprint, Flask, Response, abort, jsonify, request
from werkzeug.serving import make_server

from pacs_dashboard.viewer_page import render
from tests.support.dicomgen import new_uid


def _tag(vr: str, value: object) -> dict[str, object]:
    return {"vr": vr, "Value": [value]}


def standin_blueprint(study: str, series: list[tuple[str, list[tuple[str, bytes]]]], asked: list[str]) -> Blueprint:
    """QIDO-RS series and instances, WADO-RS instances (multipart/related), GET /copies?study=; and a page
    rendering the viewer template with this service as its DICOMweb root. ``asked`` records Accept headers."""
    bp = Blueprint("standin", __name__)
    sources = [
        {
            "name": "bucket",
            "kind": "bucket",
            "label": "Local backup copy",
            "available": True,
            "reason": "",
            "taken_at": "",
        },
        {
            "name": "offsite-1a2b3c4d",
            "kind": "offsite",
            "label": "Offsite copy, snapshot of 3 Dec 2026 02:00",
            "available": True,
            "reason": "",
            "taken_at": "2026-12-03T01:00:00Z",
        },
        {
            "name": "drive-usb",
            "kind": "drive",
            "label": "Backup drive (usb)",
            "available": False,
            "reason": "Plug in the backup drive.",
            "taken_at": "",
        },
    ]
    by_series = dict(series)

    def study_or_404(st: str, source: str) -> None:
        if st != study or source not in ("bucket", "offsite-1a2b3c4d"):
            abort(404)

    @bp.route("/standin/view/<uid>")
    def view(uid: str) -> Response:
        header = {
            "patient_name": "Rex Buddy",
            "patient_id": "VIEW-1",
            "owner": "Smith^Anna",
            "species": "Canine",
            "study_date": "20261201",
            "description": "Thorax two views",
            "modalities": "CR",
            "accession": "",
        }
        return render(
            {
                "study_uid": uid,
                "header": header,
                "dicomweb_base": "/standin/copies/{source}/dicom-web",
                "source": request.args.get("from", ""),
                "default_source": "bucket",
                "sources": [],
                "copies_url": "/standin/copies",
                "study_url": None,
                "share_mode": False,
                "shown_text": "",
            }
        )

    @bp.route("/standin/copies")
    def copies() -> Response:
        return jsonify(sources if request.args.get("study") == study else [])

    @bp.route("/standin/copies/<source>/dicom-web/studies/<st>/series")
    def qido_series(source: str, st: str) -> Response:
        study_or_404(st, source)
        rows = [
            {
                "0020000E": _tag("UI", uid),
                "00200011": _tag("IS", n),
                "00080060": _tag("CS", "CR"),
                "00201209": _tag("IS", len(files)),
            }
            for n, (uid, files) in enumerate(series, start=1)
        ]
        return Response(json.dumps(rows), mimetype="application/dicom+json")

    @bp.route("/standin/copies/<source>/dicom-web/studies/<st>/series/<se>/instances")
    def qido_instances(source: str, st: str, se: str) -> Response:
        study_or_404(st, source)
        rows = [{"00080018": _tag("UI", sop), "00200013": _tag("IS", n)} for n, (sop, _) in enumerate(by_series[se], 1)]
        return Response(json.dumps(rows), mimetype="application/dicom+json")

    @bp.route("/standin/copies/<source>/dicom-web/studies/<st>/series/<se>/instances/<sop>")
    def wado_instance(source: str, st: str, se: str, sop: str) -> Response:
        study_or_404(st, source)
        asked.append(request.headers.get("Accept", ""))
        data = dict(by_series[se])[sop]
        boundary = "standin-" + new_uid()
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        return Response(body, content_type=f'multipart/related; type="application/dicom"; boundary={boundary}')

    return bp


class Served:
    """A Flask app served on a free loopback port from a thread (werkzeug), for the browser to open."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
