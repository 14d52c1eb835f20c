// The restore page follows the job until it is done or failed.
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
(function () {
  const st = document.getElementById("state");
  if (!st) return;
  const url = st.dataset.runUrl;

  async function poll() {
    let r;
    try {
      r = await fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "pacs-dashboard"}});
    } catch (e) { setTimeout(poll, 2000); return; }
    if (r.status === 401) {  // the session ended; the restore itself goes on in the backup service
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      return;
    }
    if (!r.ok) { setTimeout(poll, 2000); return; }
    const run = await r.json();
    // The dashboard words the progress itself (run.progress): a sentence, never "0 of ?".
    const p = run.progress || {};
    const bar = document.getElementById("bar");
    if (p.total) { bar.max = p.total; bar.value = p.done || 0; } else { bar.removeAttribute("value"); }
    st.dataset.state = run.state;
    st.textContent = p.headline || "";
    const res = document.getElementById("result");
    res.className = run.state === "failed" ? "error" : "";
    res.textContent = p.detail || "";
    if (run.state === "ok") {
      bar.max = p.total || 1; bar.value = bar.max;
    } else if (run.state !== "failed") {
      setTimeout(poll, 1000);
    }
  }
  poll();
})();
