/* TicketProo scheduler: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Confirmation before a form with data-confirm is sent (Run now, Deactivate), and a busy
  // label on its button so a second click cannot start a second run.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var button = form.querySelector("button[data-busy-label]");
    if (button) {
      // Disable after the submit has been dispatched, or the browser drops the click.
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = button.getAttribute("data-busy-label");
      }, 0);
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.hasAttribute && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy-target]") : null;
    if (!button || !navigator.clipboard) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) {
      return;
    }
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () {
        button.textContent = label;
      }, 1500);
    });
  });

  // Radio groups with data-switch="name" show only the panels of the checked value
  // (data-switch-panel="name" data-switch-value="value"); without the script all panels show.
  function setUpSwitches(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-switch]"), function (group) {
      var name = group.getAttribute("data-switch");
      var panels = form.querySelectorAll('[data-switch-panel="' + name + '"]');
      var radios = group.querySelectorAll('input[type="radio"]');
      function apply() {
        var checked = group.querySelector('input[type="radio"]:checked');
        var value = checked ? checked.value : radios.length ? radios[0].value : "";
        Array.prototype.forEach.call(panels, function (panel) {
          panel.hidden = panel.getAttribute("data-switch-value") !== value;
        });
      }
      Array.prototype.forEach.call(radios, function (radio) {
        radio.addEventListener("change", apply);
      });
      apply();
    });
  }

  // The chosen registered function's signature and description; its defaults fill an empty
  // parameters box.
  function setUpFunctionPicker(form) {
    var select = form.elements.namedItem("function_name");
    var params = form.elements.namedItem("function_params");
    var infos = form.querySelectorAll("[data-function-info]");
    if (!select || !infos.length) {
      return;
    }
    function apply(fillDefaults) {
      var shown = null;
      Array.prototype.forEach.call(infos, function (info) {
        var match = info.getAttribute("data-function-info") === select.value;
        info.hidden = !match;
        if (match) {
          shown = info;
        }
      });
      if (fillDefaults && shown && params && !params.value.trim()) {
        var defaults = shown.getAttribute("data-defaults");
        if (defaults && defaults !== "{}") {
          params.value = defaults;
        }
      }
    }
    select.addEventListener("change", function () {
      apply(true);
    });
    apply(false);
  }

  // The page names the fields the preview sends (every schedule kind's, from the table of
  // kinds); this list is the fallback for a page that does not.
  var PREVIEW_FIELDS = ["schedule_kind", "time_zone", "every", "unit", "anchor", "cron_expression", "run_at"];

  function setUpPreview(form) {
    var url = form.getAttribute("data-preview-url");
    var body = form.querySelector("[data-preview-body]");
    if (!url || !body) {
      return;
    }
    var inputs = [];
    var named = (form.getAttribute("data-preview-fields") || "").split(" ").filter(Boolean);
    var fields = named.length ? named : PREVIEW_FIELDS;
    fields.forEach(function (name) {
      var element = form.elements.namedItem(name);
      if (!element) {
        return;
      }
      if (element.length !== undefined && !element.tagName) {
        Array.prototype.forEach.call(element, function (item) {
          inputs.push(item);
        });
      } else {
        inputs.push(element);
      }
    });
    var timer = null;
    var latest = 0;

    function value(name) {
      var element = form.elements.namedItem(name);
      return element ? element.value || "" : "";
    }

    function render(data) {
      body.textContent = "";
      if (!data.ok) {
        var problem = document.createElement("p");
        problem.className = "text-danger small";
        problem.textContent = (data.errors || ["The schedule is incomplete."]).join(" ");
        body.appendChild(problem);
        return;
      }
      var description = document.createElement("p");
      description.className = "preview-description";
      description.textContent = data.description;
      body.appendChild(description);
      if (data.runs.length) {
        var list = document.createElement("ol");
        list.className = "preview-runs";
        data.runs.forEach(function (run) {
          var item = document.createElement("li");
          var time = document.createElement("time");
          time.setAttribute("datetime", run.iso);
          time.textContent = run.display;
          item.appendChild(time);
          list.appendChild(item);
        });
        body.appendChild(list);
      }
      if (data.note) {
        var note = document.createElement("p");
        note.className = "small text-warning";
        note.textContent = data.note;
        body.appendChild(note);
      }
    }

    function refresh() {
      var request = ++latest;
      var query = new URLSearchParams();
      fields.forEach(function (name) {
        query.set(name, value(name));
      });
      fetch(url + "?" + query.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.json();
        })
        .then(function (data) {
          if (request === latest) {
            render(data);
          }
        })
        .catch(function () {
          /* The preview is a convenience; the form still validates on save. */
        });
    }

    inputs.forEach(function (input) {
      input.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(refresh, 300);
      });
      input.addEventListener("change", refresh);
    });
  }

  function setUpUnsavedWarning(form) {
    var dirty = false;
    form.addEventListener("input", function () {
      dirty = true;
    });
    form.addEventListener("submit", function () {
      dirty = false;
    });
    window.addEventListener("beforeunload", function (event) {
      if (dirty) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  function setUpTestRun(form) {
    var box = form.querySelector("[data-test-run-url]");
    if (!box) return;
    var button = box.querySelector("[data-test-run]");
    var result = box.querySelector(".test-run-result");
    var statusEl = box.querySelector("[data-test-run-status]");
    var metaEl = box.querySelector("[data-test-run-meta]");
    var outputEl = box.querySelector("[data-test-run-output]");
    var errorEl = box.querySelector("[data-test-run-error]");

    // The code editor (editor.js) marks the lines these errors name; empty clears the marks.
    function markLines(errors) {
      var code = form.elements.code;
      if (code && typeof CustomEvent === "function") {
        code.dispatchEvent(new CustomEvent("code-errors", { detail: { errors: errors } }));
      }
    }

    function show(status, label, meta, output, error) {
      result.hidden = false;
      statusEl.className = "badge badge-" + status;
      statusEl.textContent = label;
      metaEl.textContent = meta;
      outputEl.textContent = output;
      outputEl.hidden = !output;
      errorEl.textContent = error;
      errorEl.hidden = !error;
    }

    button.addEventListener("click", function () {
      var body = new FormData();
      body.append("code", form.elements.code ? form.elements.code.value : "");
      body.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      if (box.dataset.task) body.append("task", box.dataset.task);
      button.disabled = true;
      button.textContent = "Running…";
      fetch(box.dataset.testRunUrl, { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) {
          return response.json().then(function (data) {
            return { ok: response.ok, data: data };
          });
        })
        .then(function (answer) {
          var data = answer.data;
          if (!answer.ok) {
            show("failed", "Refused", "", "", (data.errors || ["The code was refused."]).join("\n"));
            markLines(data.errors || []);
            return;
          }
          var meta = data.duration + " s" + (data.output_truncated ? " · output truncated" : "");
          show(data.status, data.status_label, meta, data.output, data.error);
          markLines(data.error ? [data.error] : []);
          if (data.execution_url) {
            var link = document.createElement("a");
            link.href = data.execution_url;
            link.textContent = "open the record";
            metaEl.appendChild(document.createTextNode(" · "));
            metaEl.appendChild(link);
          }
        })
        .catch(function () {
          show("failed", "Error", "", "", "The test run could not be started.");
        })
        .then(function () {
          button.disabled = false;
          button.textContent = "Test run";
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form.task-form"), function (form) {
      setUpSwitches(form);
      setUpFunctionPicker(form);
      setUpPreview(form);
      setUpTestRun(form);
      setUpUnsavedWarning(form);
    });
  });
})();
