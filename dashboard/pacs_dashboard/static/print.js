// "Print or save as PDF" buttons (data-print) of the staff guide and the restore-test report.
// A file, not an inline script: the Content-Security-Policy allows no inline scripts.
"use strict";
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
