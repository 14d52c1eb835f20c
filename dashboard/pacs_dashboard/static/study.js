// A study's page and the restore confirmation: a picture that cannot be drawn becomes a sentence.
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
(function () {
  function replace(img) {
    const p = document.createElement("span");
    p.className = "preview-missing";
    p.textContent = img.dataset.fallback || "No picture can be shown here.";
    img.replaceWith(p);
  }
  for (const img of document.querySelectorAll("img[data-fallback]")) {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) replace(img);
    else img.addEventListener("error", function () { replace(img); });
  }
})();
