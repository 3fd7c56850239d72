// Findings list niceties on top of plain forms: select all, the selection count, and "Accept until"
// shown only for an accepted risk. Delegated listeners, so they survive htmx swaps of the results.
(function () {
  function bulkForm(el) { return el && el.closest("form"); }

  function refresh(form) {
    if (!form || form.id !== "bulk-form") return;
    var boxes = form.querySelectorAll('input[name="ids"]');
    var checked = form.querySelectorAll('input[name="ids"]:checked').length;
    var bar = form.querySelector(".bulk-bar");
    var count = form.querySelector("[data-bulk-count]");
    var apply = form.querySelector("[data-bulk-apply]");
    var all = form.querySelector("[data-select-all]");
    if (bar) bar.classList.toggle("has-selection", checked > 0);
    if (count) count.textContent = checked ? checked + " selected" : "Select findings to triage them";
    if (apply) apply.disabled = checked === 0;
    if (all) {
      all.checked = checked > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    syncUntil(form);
  }

  function syncUntil(root) {
    var action = root.querySelector("[data-bulk-action]");
    var until = root.querySelector("[data-bulk-until]");
    if (action && until) until.hidden = action.value !== "risk_accepted";
    var reason = root.querySelector("[data-bulk-reason]");
    if (action && reason) reason.disabled = action.value === "clear";
  }

  function syncTriageForm() {
    var form = document.querySelector(".triage-form");
    if (!form) return;
    var chosen = form.querySelector('input[name="triage"]:checked');
    var until = form.querySelector("[data-until-field]");
    if (until) until.hidden = !chosen || chosen.value !== "risk_accepted";
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches("[data-select-all]")) {
      bulkForm(t).querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = t.checked; });
    }
    if (t.matches('input[name="ids"], [data-select-all], [data-bulk-action]')) refresh(bulkForm(t));
    if (t.closest(".triage-form")) syncTriageForm();
  });

  function init() {
    refresh(document.getElementById("bulk-form"));
    syncTriageForm();
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSwap", init);
})();
