// The scan configuration drawer: Severity+ / Severity- exclusivity, Start Scan or the sync settings after
// what Bind to names, Scheduler fields that follow the chosen frequency and the Bind to search box (copying
// the one-time webhook secret is app.js's). The server enforces all of it again; this only keeps the drawer
// tidy. Works for drawers swapped in by htmx and full pages.
(function () {
  var OTHER = { severity_plus: "severity_minus", severity_minus: "severity_plus" };

  function sync(form) {
    // Bind to: a scan shows Start Scan; "Vulnerability data" (scope:…) shows the sync settings instead.
    var bindTo = form.querySelector("[data-bind-to]");
    if (bindTo) {
      var kind = (bindTo.value || "").indexOf("scope:") === 0 ? "export" : "scan";
      form.querySelectorAll("[data-source]").forEach(function (el) {
        el.hidden = el.getAttribute("data-source") !== kind;
      });
    }
    var scheduler = form.querySelector("[name=scheduler_enabled]");
    var box = form.querySelector("[data-schedule]");
    if (scheduler && box) box.hidden = !scheduler.checked;
    var frequency = form.querySelector("[name=schedule_frequency]");
    if (!frequency) return;
    form.querySelectorAll("[data-frequency]").forEach(function (el) {
      el.hidden = el.getAttribute("data-frequency").split(" ").indexOf(frequency.value) < 0;
    });
  }

  function init(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("form.profile-form")) sync(root);
    root.querySelectorAll("form.profile-form").forEach(sync);
  }

  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("form.profile-form");
    if (!form) return;
    var other = OTHER[e.target.name];
    if (other && e.target.checked) {
      var partner = form.querySelector("[name=" + other + "]");
      if (partner) partner.checked = false;
    }
    sync(form);
  });

  // Bind to search: hide options (and empty folders) that do not match every typed word.
  document.addEventListener("input", function (e) {
    var id = e.target.getAttribute && e.target.getAttribute("data-scan-search");
    if (!id) return;
    var select = document.getElementById(id);
    if (!select) return;
    var words = e.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    select.querySelectorAll("optgroup").forEach(function (group) {
      var folder = (group.label || "").toLowerCase();
      var shown = 0;
      group.querySelectorAll("option").forEach(function (option) {
        var text = folder + " " + option.textContent.toLowerCase();
        var match = option.selected || words.every(function (w) { return text.indexOf(w) >= 0; });
        option.hidden = !match;
        if (match) shown++;
      });
      group.hidden = shown === 0;
    });
  });

  document.addEventListener("htmx:load", function (e) { init(e.target); });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
