// The health page refreshes its lights from the JSON status every 10 seconds.
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
(function () {
  const box = document.getElementById("lights");
  if (!box) return;
  const url = box.dataset.statusUrl;

  async function refresh() {
    try {
      // The header tells the dashboard this is its own page (a 401 then asks for no password pop-up).
      const r = await fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "pacs-dashboard"}});
      if (r.status === 401) {  // the session ended (logout elsewhere, password change, time limit)
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (!r.ok) return;
      const d = await r.json();
      const banner = document.getElementById("banner");
      banner.className = "banner " + d.state;
      // The banner is a polite live region: changing its words (only when they change) is what gets announced.
      if (banner.textContent !== d.summary) banner.textContent = d.summary;
      box.replaceChildren();
      for (const l of d.lights) {
        const div = document.createElement("section"); div.className = "light " + l.state; div.dataset.key = l.key;
        const h = document.createElement("h2"); const dot = document.createElement("span");
        dot.className = "dot " + l.state; h.appendChild(dot); h.appendChild(document.createTextNode(l.label));
        const v = document.createElement("div"); v.className = "value"; v.textContent = l.value;
        const a = document.createElement("div"); a.className = "advice"; a.textContent = l.advice;
        div.append(h, v, a);
        if (l.note) {  // a part that cannot be checked now shows its last known state, marked as such
          div.classList.add("stale");
          const n = document.createElement("div"); n.className = "note"; n.textContent = l.note; div.appendChild(n);
        }
        box.appendChild(div);
      }
      // The server's clock in the clinic's time zone, not this browser's.
      if (d.updated) document.getElementById("updated").textContent = "Last update: " + d.updated + ".";
    } catch (e) { /* keep the last view */ }
  }
  setInterval(refresh, 10000);
})();
