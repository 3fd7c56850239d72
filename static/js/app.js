// Small behaviours htmx does not cover, as delegated listeners on data-attributes: the Content-Security-Policy
// refuses inline scripts and handlers. The drawer's open/close and Escape key, the one confirmation for
// destructive actions, dismissing messages, copying a value, and a readable message when an htmx request fails.
(function () {
  "use strict";
  var FIELD = "input, select, textarea";
  var MANUAL_COPY = "Press Ctrl+C (⌘C) to copy.";

  function closeDrawer() {
    var host = document.getElementById("drawer");
    if (host) host.innerHTML = "";
    document.body.classList.remove("drawer-open");
  }
  document.addEventListener("closeDrawer", closeDrawer);
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeDrawer(); });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "drawer") {
      document.body.classList.toggle("drawer-open", !!e.detail.target.innerHTML.trim());
      var first = e.detail.target.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    }
  });

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-close-drawer]") || e.target.classList.contains("drawer-backdrop")) {
      e.preventDefault();
      closeDrawer();
      return;
    }
    var dismiss = e.target.closest("[data-dismiss]");
    if (dismiss) {
      var alert = dismiss.closest(".alert");
      if (alert) alert.remove();
      return;
    }
    var copy = e.target.closest("[data-copy]");
    if (copy) copyValue(copy);
  });

  // One confirmation for destructive actions: data-confirm="Question?" on a plain form or its submit button,
  // or on an element that sends an htmx request. htmx asks through htmx:confirm, so nothing asks twice.
  document.addEventListener("submit", function (e) {
    if (e.defaultPrevented) return; // htmx took this form over
    var source = e.submitter && e.submitter.hasAttribute("data-confirm") ? e.submitter : e.target;
    var question = source.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });
  document.addEventListener("htmx:confirm", function (e) {
    var question = e.detail.elt.getAttribute("data-confirm");
    if (!question) return;
    e.preventDefault();
    if (window.confirm(question)) e.detail.issueRequest(true);
  });

  // <button data-copy="element-id" data-copy-status="status-id">: the element's value (or text) to the clipboard.
  function copyValue(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-copy-status") || "");
    if (!source) return;
    var text = source.matches(FIELD) ? source.value : source.textContent.trim();
    var say = function (message) { if (status) status.textContent = message; else button.textContent = message; };
    var done = function () { say(status ? "Copied to the clipboard." : "Copied"); };
    if (source.matches(FIELD)) source.select();
    else window.getSelection().selectAllChildren(source);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { if (status) say(MANUAL_COPY); });
      return;
    }
    try {
      if (!document.execCommand("copy")) throw new Error("copy refused");
      done();
    } catch (err) {
      if (status) say(MANUAL_COPY);
    }
  }

  // Show a readable message when the server answers an htmx request with an error.
  function addMessage(text) {
    var box = document.getElementById("messages");
    if (!box) return;
    var div = document.createElement("div");
    div.className = "alert alert-error";
    div.textContent = text;
    box.appendChild(div);
  }
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var requestId = xhr.getResponseHeader("X-Request-ID");
    addMessage(xhr.status === 403 ? "You do not have permission to do that, or your session expired — reload the page."
      : "Something went wrong (HTTP " + xhr.status + "). Nothing was changed; try again."
        + (requestId ? " Request id: " + requestId + "." : ""));
  });
  document.addEventListener("htmx:sendError", function () {
    addMessage("The server could not be reached. Check your connection and try again.");
  });
})();
