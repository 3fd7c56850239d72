// Small behaviours htmx does not cover, as delegated listeners on data-attributes: the Content-Security-Policy
// refuses inline scripts and handlers. The drawer (focus moves in, stays in, Escape closes, focus goes back to
// what opened it), the one confirmation for destructive actions, dismissing messages, copying a value, and a
// readable message when an htmx request fails.
(function () {
  "use strict";
  var FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), ' +
    'select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
  var FIELD = "input, select, textarea";
  var MANUAL_COPY = "Press Ctrl+C (⌘C) to copy.";
  var opener = null; // the element that had focus when the drawer opened
  var openerPlace = null; // how to find it again when htmx has re-rendered it meanwhile
  var refocus = null; // after closing: give focus back once the opener is re-rendered
  var focusBefore = null; // the drawer control that had focus before htmx swapped the drawer's content
  var lastInDrawer = null; // the drawer control that had focus last

  function host() { return document.getElementById("drawer"); }
  function isOpen() { return document.body.classList.contains("drawer-open"); }
  function openDrawer() { var h = host(); return isOpen() && h ? h.querySelector(".drawer") : null; }

  function visibleFocusables(root) {
    return Array.prototype.filter.call(root.querySelectorAll(FOCUSABLE), function (el) {
      return el.getClientRects().length > 0;
    });
  }

  // A selector and an index that find the same control after htmx swapped in a fresh copy of it.
  function placeOf(el) {
    if (!el || el === document.body || !el.tagName) return null;
    var attr = el.id ? "id" : ["hx-get", "href", "hx-post", "name"].filter(function (a) { return el.hasAttribute(a); })[0];
    if (!attr) return null;
    var selector = el.tagName.toLowerCase() + "[" + attr + '="' + CSS.escape(el.getAttribute(attr)) + '"]';
    if (attr === "name" && el.hasAttribute("value")) selector += '[value="' + CSS.escape(el.value) + '"]';
    return { selector: selector, index: Array.prototype.indexOf.call(document.querySelectorAll(selector), el) };
  }
  function find(place) {
    return place ? document.querySelectorAll(place.selector)[Math.max(place.index, 0)] || null : null;
  }

  // The page behind an open drawer is inert: no focus, no clicks, hidden from assistive technology. The
  // messages area stays live, so what the drawer's actions report is still announced.
  function setBackgroundInert(inert) {
    document.querySelectorAll(".sidebar, .topbar, .content").forEach(function (el) { el.inert = inert; });
  }

  function focusInDrawer(drawer, previous) {
    var fields = visibleFocusables(drawer).filter(function (el) { return el.matches(FIELD); });
    var again = find(previous);
    var target = drawer.querySelector(".has-error input:not([type=hidden]), .has-error select, .has-error textarea")
      || (again && drawer.contains(again) ? again : null) || fields[0] || visibleFocusables(drawer)[0];
    if (!target) { drawer.setAttribute("tabindex", "-1"); target = drawer; }
    target.focus();
  }

  function closeDrawer() {
    var h = host();
    var wasOpen = isOpen();
    if (h) h.innerHTML = "";
    document.body.classList.remove("drawer-open");
    setBackgroundInert(false);
    if (!wasOpen) return;
    var back = opener && opener.isConnected ? opener : find(openerPlace);
    if (back) back.focus();
    refocus = openerPlace;
    opener = openerPlace = null;
  }

  document.addEventListener("closeDrawer", closeDrawer);

  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target !== host()) return;
    var active = document.activeElement;
    if (!isOpen()) {
      opener = active;
      openerPlace = placeOf(active);
      focusBefore = null;
    } else {
      focusBefore = openDrawer().contains(active) ? placeOf(active) : null;
    }
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target !== host()) return;
    var drawer = e.detail.target.querySelector(".drawer");
    if (!drawer) { closeDrawer(); return; }
    document.body.classList.add("drawer-open");
    setBackgroundInert(true);
    focusInDrawer(drawer, focusBefore);
  });

  // A request can take focus away: hx-disabled-elt disables the focused button while it runs, a swap replaces
  // the focused control. Inside an open drawer focus goes back to that control (or the drawer's first field);
  // after the drawer closed and htmx re-rendered its opener (a saved profile refreshes the list), to the new copy.
  document.addEventListener("focusin", function (e) {
    var drawer = openDrawer();
    if (drawer && drawer.contains(e.target)) lastInDrawer = e.target;
  });
  function recoverFocus() {
    if (document.activeElement && document.activeElement !== document.body) return;
    var drawer = openDrawer();
    if (drawer) {
      var last = lastInDrawer;
      if (last && last.isConnected && drawer.contains(last) && !last.disabled) last.focus();
      else focusInDrawer(drawer, null);
      return;
    }
    var back = find(refocus);
    if (back) { back.focus(); refocus = null; }
  }
  document.addEventListener("htmx:afterRequest", recoverFocus);
  document.addEventListener("htmx:afterSettle", recoverFocus);
  document.addEventListener("pointerdown", function () { refocus = null; });

  document.addEventListener("keydown", function (e) {
    refocus = null;
    var drawer = openDrawer();
    if (!drawer) return;
    if (e.key === "Escape") {
      e.preventDefault();
      closeDrawer();
      return;
    }
    if (e.key !== "Tab") return;
    // Keep Tab and Shift+Tab inside the drawer: from the last control back to the first, and the reverse.
    var items = visibleFocusables(drawer);
    var first = items[0], last = items[items.length - 1], active = document.activeElement;
    if (!first) { e.preventDefault(); return; }
    if (!drawer.contains(active)) { e.preventDefault(); (e.shiftKey ? last : first).focus(); }
    else if (e.shiftKey && active === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && active === last) { e.preventDefault(); first.focus(); }
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
