/* The task form in the Django admin: show only the fields of the chosen schedule kind and of
   what the task runs (code or a registered function). Every field shows without this file. */
(function () {
  "use strict";

  var GROUPS = {
    schedule_kind: {
      interval: ["every", "unit", "anchor"],
      cron: ["cron_expression"],
      once: ["run_at"],
    },
    runs: {
      code: ["code"],
      function: ["function_name", "function_params"],
    },
  };

  function row(name) {
    return document.querySelector(".form-row.field-" + name) || document.querySelector(".field-" + name);
  }

  function apply(form, group) {
    var checked = form.querySelector('input[name="' + group + '"]:checked');
    var options = GROUPS[group];
    if (!checked) {
      return;
    }
    Object.keys(options).forEach(function (value) {
      options[value].forEach(function (name) {
        var element = row(name);
        if (element) {
          element.style.display = value === checked.value ? "" : "none";
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("scheduledtask_form");
    if (!form) {
      return;
    }
    Object.keys(GROUPS).forEach(function (group) {
      Array.prototype.forEach.call(form.querySelectorAll('input[name="' + group + '"]'), function (radio) {
        radio.addEventListener("change", function () {
          apply(form, group);
        });
      });
      apply(form, group);
    });
  });
})();
