// The page of a new share link: "Copy the link" puts it on the clipboard (or selects it to copy by hand).
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
(function () {
  const button = document.getElementById("copy-share-url");
  const field = document.getElementById("share-url");
  if (!button || !field) return;
  button.addEventListener("click", function () {
    field.select();
    const done = function () { button.textContent = button.dataset.copied || "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
