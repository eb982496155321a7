/* TicketProo scheduler: pages that follow runs while they are pending or running (#13).
 *
 * The page of one run (#run-page[data-live-url]) asks views.live every 2 s (15 s while a
 * retry waits for its time) for the run's
 * status, output so far and new log lines, and shows them in place. When the status (or
 * what the run waits for) changes, it fetches the page itself and swaps #run-page, so the
 * started and finished times, the error and the buttons come from the one template; once the
 * run has ended the fresh page has no data-live-url and the polling stops.
 *
 * The task page swaps its run history (#history) and summary cards from a fresh copy of
 * itself every 3 s while a row is running or queued (data-live-row="now"), every 15 s while
 * one only waits for a retry's time ("later"), and stops when none is left.
 *
 * Without this file the pages still work: they show the state they were served with.
 */
(function () {
  "use strict";

  var RUN_POLL_MS = 2000;
  var PAGE_POLL_MS = 3000;
  var WAITING_POLL_MS = 15000;
  var ERROR_POLL_MS = 5000;

  function fetchPage(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        return new DOMParser().parseFromString(html, "text/html");
      });
  }

  function swap(doc, selector) {
    var fresh = doc.querySelector(selector);
    var old = document.querySelector(selector);
    if (!fresh || !old) {
      return null;
    }
    var node = document.importNode(fresh, true);
    old.replaceWith(node);
    return node;
  }

  // -- the page of one run ------------------------------------------------------------------

  function showOutput(text) {
    var section = document.getElementById("run-output");
    if (!section || !text) {
      return;
    }
    var pre = document.getElementById("execution-output");
    if (!pre) {
      pre = document.createElement("pre");
      pre.className = "output";
      pre.id = "execution-output";
      var placeholder = section.querySelector("p.muted");
      if (placeholder) {
        placeholder.replaceWith(pre);
      } else {
        section.appendChild(pre);
      }
    }
    if (pre.textContent !== text) {
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = text;
      if (atEnd) {
        pre.scrollTop = pre.scrollHeight;
      }
    }
  }

  function cell(child, className) {
    var td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    td.appendChild(child);
    return td;
  }

  function appendLines(lines) {
    var body = document.getElementById("log-lines-body");
    if (!body || !lines.length) {
      return;
    }
    var wrap = body.closest(".table-wrap");
    if (wrap) {
      wrap.hidden = false;
    }
    var empty = document.getElementById("log-lines-empty");
    if (empty) {
      empty.remove();
    }
    lines.forEach(function (line) {
      var row = document.createElement("tr");
      row.className = "log-level-" + line.level.toLowerCase();
      var time = document.createElement("time");
      time.setAttribute("datetime", line.at);
      time.textContent = line.time;
      var message = document.createElement("bdi");
      message.textContent = line.message;
      row.appendChild(cell(time, "nowrap"));
      row.appendChild(cell(document.createTextNode(line.level)));
      row.appendChild(cell(message, "log-message"));
      body.appendChild(row);
    });
  }

  function showDuration(seconds) {
    var place = document.querySelector("[data-live-duration]");
    if (place && typeof seconds === "number") {
      place.textContent = seconds.toFixed(3) + " s";
    }
  }

  function followRun(root) {
    var url = root.getAttribute("data-live-url");
    var status = root.getAttribute("data-live-status");
    var waiting = root.getAttribute("data-live-waiting") || "";
    var seq = parseInt(root.getAttribute("data-live-seq") || "0", 10);

    function later(ms) {
      window.setTimeout(look, ms);
    }

    function renew() {
      // A new state: the page itself says it best. Still live: follow the fresh page.
      return fetchPage(window.location.href).then(function (doc) {
        var fresh = swap(doc, "#run-page");
        if (fresh && fresh.hasAttribute("data-live-url")) {
          followRun(fresh);
        }
      });
    }

    function look() {
      fetch(url + "?after=" + seq, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          if (data.status !== status || data.waiting !== waiting) {
            return renew();
          }
          showOutput(data.output);
          appendLines(data.log_lines);
          seq = data.last_seq;
          showDuration(data.duration);
          if (data.more_lines) {
            later(0);
          } else {
            // A retry waiting for its time (maybe hours) is looked at less often.
            later(data.waiting_kind === "retry" ? WAITING_POLL_MS : RUN_POLL_MS);
          }
          return null;
        })
        .catch(function () {
          later(ERROR_POLL_MS);
        });
    }

    later(RUN_POLL_MS);
  }

  // -- the task page ------------------------------------------------------------------------

  function followHistory() {
    if (!document.querySelector("#history [data-live-row]")) {
      return;
    }
    var soon = document.querySelector('#history [data-live-row="now"]');
    window.setTimeout(
      function () {
        fetchPage(window.location.href)
          .then(function (doc) {
            swap(doc, "#history");
            swap(doc, "section.cards");
            followHistory();
          })
          .catch(function () {
            window.setTimeout(followHistory, ERROR_POLL_MS);
          });
      },
      soon ? PAGE_POLL_MS : WAITING_POLL_MS
    );
  }

  function start() {
    var run = document.querySelector("#run-page[data-live-url]");
    if (run) {
      followRun(run);
    }
    if (document.querySelector("#history[data-live-page]")) {
      followHistory();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
