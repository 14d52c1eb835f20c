"""`make bench`, viewing: the first image on screen for a 10 MB radiograph from each copy, beside the time to
restore the same study into the PACS (issue 24 item 5; docs/performance.md).

The viewer (dwv in headless Chromium) records on ``#viewer`` when its first image was drawn
(``data-first-image-ms``, milliseconds since the page's navigation began); that is the figure per copy:
the PACS, the bucket, an offsite snapshot not fetched yet (the plugin's view cache is empty at its start) and
the same snapshot once cached, and a share link opened in a browser without a login. The restore is the
plugin's own (``POST /backup/restores``), from the bucket and from the offsite snapshot, timed until verified.
Goals: the bucket within 1.5x of the PACS; the uncached snapshot at least 3x faster than restore-then-view.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

from restores import wait_run

import devstack
from pacs_backup.clients.orthanc_http import OrthancHttp
from tests.support.browser import ARGS, CHROMIUM
from tests.support.dicomgen import make_study

USER, PASSWORD = "bench", "bench-password-" + devstack.new_secret(8)


class StackLike(Protocol):
    def start_orthanc(self, plugin: bool, bucket: str) -> tuple[OrthancHttp, devstack.OrthancSettings]: ...

    def stop_orthanc(self) -> None: ...


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _first_image_s(page: Any, url: str) -> float:
    """Open ``url`` in a fresh navigation; seconds from its start until the viewer drew its first image."""
    page.goto(url)
    page.wait_for_function(
        "() => ['shown', 'failed'].includes(document.getElementById('viewer')?.dataset.state)", timeout=300_000
    )
    state = page.locator("#viewer").get_attribute("data-state")
    if state != "shown":
        raise RuntimeError(f"the viewer did not show {url}: {page.locator('#viewer-message').inner_text()}")
    return float(page.locator("#viewer").get_attribute("data-first-image-ms") or "nan") / 1000


def bench_viewing(stack: StackLike, tmp: Path, log: Any) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    http, s = stack.start_orthanc(True, "view")
    uid, blobs = make_study(1, rows=2500, cols=2000, modality="CR", patient_name="Bench^Rex")
    size_mb = len(blobs[0]) / 1e6
    http.upload(blobs[0])
    _wait(lambda: http.get_json("/backup/status")["replicated"] >= 1, 120, "the copy in the bucket")
    wait_run(http, http.post_json("/backup/snapshots", {})["runs"][0])
    # Which snapshots hold it is known (the plugin reads that after each snapshot); its files are not fetched.
    _wait(lambda: any(d["name"] == "offsite" for d in http.get_json(f"/backup/copies?study={uid}")), 60, "offsite")
    port = devstack.free_port()
    dash = devstack.start_dashboard(
        port,
        tmp / "view-dash",
        {
            "ORTHANC_URL": http.url,
            "ORTHANC_USERNAME": s.username,
            "ORTHANC_PASSWORD": s.password,
            "DASHBOARD_USERNAME": USER,
            "DASHBOARD_PASSWORD": PASSWORD,
        },
        tmp / "view-dash.log",
    )
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"view_image_mb": round(size_mb, 1)}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            staff = browser.new_page()
            staff.goto(base + "/login")
            staff.fill("input[name=username]", USER)
            staff.fill("input[name=password]", PASSWORD)
            staff.click("button[type=submit]")
            staff.wait_for_url(base + "/")
            view = f"{base}/studies/{uid}/view?from="
            _first_image_s(staff, view + "pacs")  # not counted: the browser's and the dashboard's first viewer page
            out["view_pacs_s"] = _first_image_s(staff, view + "pacs")
            out["view_bucket_s"] = _first_image_s(staff, view + "bucket")
            out["view_offsite_uncached_s"] = _first_image_s(staff, view + "offsite")
            out["view_offsite_cached_s"] = _first_image_s(staff, view + "offsite")
            staff.goto(f"{base}/studies/{uid}")
            staff.click("#make-share")
            link = staff.locator("#share-url").input_value()
            recipient = browser.new_context().new_page()  # no login: the owner or the referring vet
            out["view_share_s"] = _first_image_s(recipient, link)
            browser.close()
        shown = ", ".join(f"{k[5:-2]} {v:.2f} s" for k, v in out.items() if k.startswith("view_") and k.endswith("_s"))
        log(f"first image of a {size_mb:.1f} MB CR: {shown}")
        study_id = json.loads(http.request("POST", "/tools/lookup", uid.encode(), "text/plain"))[0]["ID"]
        for source, key in (("minio", "bucket"), ("offsite", "offsite")):
            http.delete(f"/studies/{study_id}")
            t0 = time.perf_counter()
            run = wait_run(http, http.post_json("/backup/restores", {"study_uid": uid, "source": source})["run"])
            out[f"restore_study_{key}_s"] = time.perf_counter() - t0
            if not run["summary"]["ok"]:
                raise RuntimeError(f"the restore from {source} did not verify: {run['summary']}")
            study_id = json.loads(http.request("POST", "/tools/lookup", uid.encode(), "text/plain"))[0]["ID"]
    finally:
        dash.stop(10)
        stack.stop_orthanc()
    out["view_bucket_vs_pacs"] = out["view_bucket_s"] / out["view_pacs_s"]
    then_view = out["restore_study_offsite_s"] + out["view_pacs_s"]
    out["view_offsite_speedup_vs_restore"] = then_view / out["view_offsite_uncached_s"]
    speedup = out["view_offsite_speedup_vs_restore"]
    log(
        f"restore of the same study: bucket {out['restore_study_bucket_s']:.2f} s, offsite "
        f"{out['restore_study_offsite_s']:.2f} s; the snapshot viewed {speedup:.1f}x faster than restore-then-view"
    )
    return out
