// passgate portal: the copy buttons and "select all". No inline script
// anywhere: the Content-Security-Policy forbids it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var text = btn.getAttribute("data-copy");
      var status = btn.parentNode.querySelector(".copied");
      var done = function (msg) { if (status) { status.textContent = msg; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { done("Copied."); },
          function () { done("Copy failed: select the text and copy it."); });
      } else {
        done("Select the text and copy it.");
      }
    });
  });
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var name = all.getAttribute("data-select-all");
    all.addEventListener("change", function () {
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (c) {
        c.checked = all.checked;
      });
    });
  });
});
