// Small behaviours htmx does not cover: the drawer's open/close and Escape key.
(function () {
  function closeDrawer() {
    var host = document.getElementById("drawer");
    if (host) host.innerHTML = "";
    document.body.classList.remove("drawer-open");
  }
  document.addEventListener("closeDrawer", closeDrawer);
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeDrawer(); });
  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-close-drawer]") || e.target.classList.contains("drawer-backdrop")) {
      e.preventDefault();
      closeDrawer();
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "drawer") {
      document.body.classList.toggle("drawer-open", !!e.detail.target.innerHTML.trim());
      var first = e.detail.target.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    }
  });
  // Show a readable message when the server answers an htmx request with an error.
  document.addEventListener("htmx:responseError", function (e) {
    var box = document.getElementById("messages");
    if (!box) return;
    var div = document.createElement("div");
    div.className = "alert alert-error";
    div.textContent = e.detail.xhr.status === 403 ? "You do not have permission to do that, or your session expired — reload the page."
      : "Something went wrong (HTTP " + e.detail.xhr.status + "). Nothing was changed; try again."
        + (e.detail.xhr.getResponseHeader("X-Request-ID") ? " Request id: " + e.detail.xhr.getResponseHeader("X-Request-ID") + "." : "");
    box.appendChild(div);
  });
  document.addEventListener("htmx:sendError", function () {
    var box = document.getElementById("messages");
    if (box) { var div = document.createElement("div"); div.className = "alert alert-error"; div.textContent = "The server could not be reached. Check your connection and try again."; box.appendChild(div); }
  });
})();
