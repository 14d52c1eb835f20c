"""The viewer page as the browser gets it: where dwv's files are, the import map that lets dwv's ES module find
konva, jszip and magic-wand-tool, and the page's own Content-Security-Policy.

dwv (GPL-3.0) and its three libraries are npm's files, unmodified (`dev/setup viewer` copies them into
static/viewer/vendor/). dwv's module imports them by bare name; an import map, written inline in the page,
points each name at a two-line module of ours (static/viewer/*-global.js) that hands over the global the
library's browser build sets. Browsers read import maps only inline, so the CSP names its hash. dwv starts its
decoder workers from the page's base address, so the page's <base> is the folder of dwv's files.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from flask import Response, make_response, render_template, url_for

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "viewer" / "vendor"
# The classic scripts that set Konva, JSZip and MagicWand before dwv's module runs (in this order).
GLOBAL_SCRIPTS = ("konva.min.js", "jszip.min.js", "magic-wand.min.js")
# Bare module names dwv imports -> our module that exports the library's global.
SHIMS = {"konva": "konva-global.js", "jszip": "jszip-global.js", "magic-wand-tool": "magic-wand-global.js"}
# The hash of "" : the one style attribute allowed is an empty one (dwv empties the style konva gives its drawing).
EMPTY_STYLE = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
MISSING = (
    "The viewer's files are not installed on this dashboard. The technician runs `dev/setup viewer` "
    "(or rebuilds the dashboard image), then reloads this page."
)


class ViewerHeader(TypedDict):
    """The patient, owner and study lines above the image ("" when unknown); ``study_date`` is YYYYMMDD."""

    patient_name: str
    patient_id: str
    owner: str
    species: str  # with the breed: "Canine, Labrador"
    study_date: str
    description: str
    modalities: str
    accession: str


def header_of(study: Mapping[str, Any]) -> ViewerHeader:
    """The header of a study summary (the catalog's, the dashboard's mirror's or the group catalog's row)."""
    return ViewerHeader(
        patient_name=study.get("display_name") or study.get("patient_name") or "",
        patient_id=study.get("patient_id") or "",
        owner=study.get("owner") or "",
        species=", ".join(x for x in (study.get("species"), study.get("breed")) if x),
        study_date=study.get("study_date") or "",
        description=study.get("description") or "",
        modalities=study.get("modalities") or "",
        accession=study.get("accession") or "",
    )


class ViewerAssets(TypedDict):
    """What viewer.html needs to load dwv: the classic scripts, the inline import map and the page's script."""

    scripts: list[str]
    about: str  # SOURCES.txt: the packages' versions, where their source is (the licences are beside it)
    base: str  # the page's <base href>: dwv starts its decoder workers from document.baseURI + "assets/workers/"
    importmap: str
    module: str
    installed: bool


def vendor_version() -> str:
    """A short tag of the installed viewer files (changes with the npm lock file), part of their URLs so
    they can be cached for a year; "missing" when `dev/setup viewer` has not run."""
    try:
        return (VENDOR_DIR / ".stamp").read_text().strip()[:12] or "missing"
    except OSError:
        return "missing"


def assets() -> ViewerAssets:
    version = vendor_version()
    vendor = [url_for("viewer.vendor", version=version, name=n) for n in GLOBAL_SCRIPTS]
    imports = {name: url_for("static", filename=f"viewer/{shim}") for name, shim in SHIMS.items()}
    imports["dwv"] = url_for("viewer.vendor", version=version, name="dwv.min.js")
    return ViewerAssets(
        scripts=vendor,
        about=url_for("viewer.vendor", version=version, name="SOURCES.txt"),
        base=url_for("viewer.vendor", version=version, name="dwv.min.js").rsplit("/", 1)[0] + "/",
        importmap=json.dumps({"imports": imports}, sort_keys=True),
        module=url_for("static", filename="viewer.js"),
        installed=version != "missing" and (VENDOR_DIR / "dwv.min.js").is_file(),
    )


def csp(importmap: str, connect: str = "") -> str:
    """The viewer page's policy: the dashboard's, plus what dwv needs (docs/security.md, "The viewer page").

    Args:
        importmap: the exact text of the inline import map (its hash is the only inline script allowed).
        connect: another origin the page reads DICOMweb from ("" = this dashboard only).
    """
    digest = base64.b64encode(hashlib.sha256(importmap.encode()).digest()).decode()
    return (
        f"default-src 'self'; script-src 'self' 'sha256-{digest}'; style-src 'self'; "
        f"style-src-attr 'unsafe-hashes' '{EMPTY_STYLE}'; "
        "img-src 'self' data:; worker-src 'self'; "
        f"connect-src 'self'{' ' + connect if connect else ''}; object-src 'none'; base-uri 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


def render(context: Mapping[str, Any], *, connect: str = "") -> Response:
    """viewer.html with ``context`` (its variables are listed at the top of the template), served with the
    viewer's CSP. Also for pages outside the dashboard's login (share links): pass ``share_mode=True``."""
    found = assets()
    resp = make_response(render_template("viewer.html", **context, viewer=found))
    resp.headers["Content-Security-Policy"] = csp(found["importmap"], connect)
    return resp
