// A restore asked while the PACS was down: follow it until the PACS answers and the restore starts.
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
(function () {
  const box = document.getElementById("waiting");
  if (!box) return;
  async function poll() {
    try {
      const r = await fetch(box.dataset.url, {credentials: "same-origin", headers: {"X-Requested-With": "pacs-dashboard"}});
      if (r.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname)); return; }
      if (r.ok) {
        const w = await r.json();
        box.textContent = w.text;
        if (w.job_url) { window.location.assign(w.job_url); return; }
        if (w.error) { box.dataset.state = "refused"; box.className = "error"; return; }
      }
    } catch (e) { /* try again */ }
    setTimeout(poll, 3000);
  }
  setTimeout(poll, 3000);
})();
