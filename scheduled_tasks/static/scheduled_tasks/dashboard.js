// The dashboard's counts refresh themselves: every few seconds the page asks the JSON answer
// at data-live-url (scheduled_tasks/views/dashboard.py) and writes each value into the
// element whose data-live names its path ("tasks.active", "recent.by_status.failed", ...).
// No reload; polling pauses while the tab is hidden and slows down after errors.
(function () {
  "use strict";

  var INTERVAL_MS = 5000;
  var MAX_INTERVAL_MS = 60000;

  function lookup(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === null || value === undefined ? undefined : value[key];
    }, data);
  }

  function render(element, value) {
    var format = element.getAttribute("data-live-format");
    if (format === "health") {
      var span = document.createElement("span");
      span.className = value ? "health-ok" : "health-down";
      span.textContent = value ? "Running" : "Down";
      element.replaceChildren(span);
      return;
    }
    element.textContent = String(value);
    if (element.hasAttribute("data-live-alarm")) {
      element.classList.toggle("text-danger", Number(value) > 0);
    }
  }

  function start(root) {
    var url = root.getAttribute("data-live-url");
    var note = document.querySelector("[data-live-note]");
    var delay = INTERVAL_MS;
    var timer = null;

    function schedule() {
      window.clearTimeout(timer);
      if (!document.hidden) {
        timer = window.setTimeout(poll, delay);
      }
    }

    function showNote(text) {
      if (!note) return;
      note.textContent = text;
      note.hidden = !text;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          document.querySelectorAll("[data-live]").forEach(function (element) {
            var value = lookup(data, element.getAttribute("data-live"));
            if (value !== undefined && value !== null) render(element, value);
          });
          delay = INTERVAL_MS;
          showNote("");
        })
        .catch(function () {
          delay = Math.min(delay * 2, MAX_INTERVAL_MS);
          showNote("(live update failed, retrying)");
        })
        .finally(schedule);
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        window.clearTimeout(timer);
      } else {
        delay = INTERVAL_MS;
        poll();
      }
    });
    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-live-url]");
    if (root) start(root);
  });
})();
