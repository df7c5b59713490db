/* unionwh Data Docs: the two behaviours GE's pages take from jQuery and Bootstrap, in plain JS
   (no request leaves the run folder): "Show more…" blocks and the "Failed only" filter. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest('a[data-toggle="collapse"]');
    if (!link) { return; }
    var target = document.getElementById((link.getAttribute("href") || "").replace(/^#/, ""));
    if (!target) { return; }
    event.preventDefault();
    var open = target.classList.toggle("show");
    link.setAttribute("aria-expanded", open ? "true" : "false");
  });

  function showOnlyFailed(only) {
    document.querySelectorAll(".hide-succeeded-validation-target-child").forEach(function (el) {
      if (el.parentElement) { el.parentElement.hidden = only; }
    });
    document.querySelectorAll(".hide-succeeded-validation-target").forEach(function (el) { el.hidden = only; });
    document.querySelectorAll(".hide-succeeded-validations-column-section-target-child").forEach(function (el) {
      var section = el.parentElement && el.parentElement.parentElement;
      if (!section) { return; }
      section.hidden = only;
      if (section.id) {
        document.querySelectorAll('a[href$="#' + section.id + '"]').forEach(function (a) {
          a.parentElement.hidden = only;
        });
      }
    });
  }

  document.querySelectorAll("[data-filter]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.querySelectorAll("[data-filter]").forEach(function (b) { b.classList.remove("active"); });
      button.classList.add("active");
      showOnlyFailed(button.getAttribute("data-filter") === "failed");
    });
  });
}());
