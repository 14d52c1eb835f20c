// Checking the PACS copy of a study against its backup: follow the check until it is done.
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
(function () {
  const st = document.getElementById("check-state");
  if (!st || st.dataset.state !== "running") return;
  async function poll() {
    try {
      const r = await fetch(st.dataset.url, {credentials: "same-origin", headers: {"X-Requested-With": "pacs-dashboard"}});
      if (r.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname)); return; }
      if (r.ok) {
        const c = await r.json();
        const bar = document.getElementById("check-bar"); bar.max = c.total || 1; bar.value = c.done || 0;
        st.textContent = c.headline; st.dataset.state = c.state;
        document.getElementById("check-detail").textContent = c.detail || "";
        document.getElementById("check-restore").hidden = !c.restore;
        if (c.state !== "running") return;
      }
    } catch (e) { /* try again */ }
    setTimeout(poll, 1000);
  }
  poll();
})();
