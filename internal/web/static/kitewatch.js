// kitewatch.js: small progressive enhancements. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // "Copy" buttons next to a token shown once: hidden until JavaScript can
  // copy; the field stays selectable by hand.
  document.querySelectorAll("button[data-copy-target]").forEach(function (btn) {
    var field = document.getElementById(btn.getAttribute("data-copy-target"));
    if (!field || !navigator.clipboard) return;
    btn.hidden = false;
    var status = document.querySelector("[data-copy-status]");
    btn.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(function () {
        if (status) status.textContent = "Copied to the clipboard.";
      }, function () {
        field.select();
        if (status) status.textContent = "Copying failed: the token is selected, press Ctrl+C.";
      });
    });
  });
  // Select a token shown once when its field gets focus.
  document.querySelectorAll("input[data-copy-source]").forEach(function (f) {
    f.addEventListener("focus", function () { f.select(); });
  });
});
