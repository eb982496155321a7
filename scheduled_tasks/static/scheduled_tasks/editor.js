/* The task form's code editor: CodeMirror 6 (vendor/codemirror.js, window.TPCodeMirror) over
   the code textarea. The textarea stays in the form and is kept in sync, so the form posts as
   before and works without JavaScript. Lines named by "Line N" errors (the form's code errors
   on load, a test run's error or refusal) get a line tint and a gutter marker.
   Other scripts mark lines by dispatching on the textarea:
     new CustomEvent("code-errors", { detail: { errors: ["Line 2: ..."] } })   (empty: clear) */
(function () {
  "use strict";

  var CM = window.TPCodeMirror;
  var LINE = /^\s*Line (\d+)\b[:,]?\s*(.*)$/gm;

  // [{ line, message }] from error texts: "Line 2: msg" and traceback lines "  Line 3, in f";
  // a traceback's last line (the exception) is the message of every line it names.
  function parseErrors(texts) {
    var found = [];
    texts.forEach(function (text) {
      var lines = String(text || "").trim().split("\n");
      var last = lines[lines.length - 1].trim();
      var match;
      LINE.lastIndex = 0;
      while ((match = LINE.exec(text)) !== null) {
        var isTrace = /^in /.test(match[2]);
        found.push({ line: parseInt(match[1], 10), message: isTrace ? last : match[2] || last });
      }
    });
    return found;
  }

  function lineText(item) {
    return "Line " + item.line + ": " + item.message;
  }

  if (!CM) {
    return; // the bundle did not load: the plain textarea stays, and still works
  }

  var setErrors = CM.StateEffect.define();

  var ErrorMarker = class extends CM.GutterMarker {
    constructor(message) {
      super();
      this.message = message;
    }
    eq(other) {
      return other.message === this.message;
    }
    toDOM() {
      var span = document.createElement("span");
      span.className = "cm-error-marker";
      span.textContent = "●";
      span.title = this.message;
      return span;
    }
  };

  // The marked lines: line decorations and gutter markers, mapped through edits.
  var errorField = CM.StateField.define({
    create: function () {
      return { lines: CM.Decoration.none, markers: CM.RangeSet.empty };
    },
    update: function (value, tr) {
      value = { lines: value.lines.map(tr.changes), markers: value.markers.map(tr.changes) };
      tr.effects.forEach(function (effect) {
        if (!effect.is(setErrors)) {
          return;
        }
        var doc = tr.state.doc;
        var byLine = {};
        effect.value.forEach(function (item) {
          if (item.line >= 1 && item.line <= doc.lines) {
            byLine[item.line] = (byLine[item.line] ? byLine[item.line] + "\n" : "") + lineText(item);
          }
        });
        var numbers = Object.keys(byLine)
          .map(Number)
          .sort(function (a, b) {
            return a - b;
          });
        var lines = [];
        var markers = [];
        numbers.forEach(function (number) {
          var from = doc.line(number).from;
          lines.push(
            CM.Decoration.line({ class: "cm-error-line", attributes: { title: byLine[number] } }).range(from)
          );
          markers.push(new ErrorMarker(byLine[number]).range(from));
        });
        value = { lines: CM.Decoration.set(lines), markers: CM.RangeSet.of(markers) };
      });
      return value;
    },
    provide: function (field) {
      return CM.EditorView.decorations.from(field, function (value) {
        return value.lines;
      });
    },
  });

  var errorGutter = CM.gutter({
    class: "cm-error-gutter",
    markers: function (view) {
      return view.state.field(errorField).markers;
    },
  });

  // Escape collapses the selection and lets the next Tab or Shift-Tab (within two seconds)
  // move focus out of the editor: the keyboard user's way out. Ctrl-M toggles that for good.
  var escapeKey = {
    key: "Escape",
    run: function (view) {
      CM.simplifySelection(view);
      return CM.temporarilySetTabFocusMode(view);
    },
  };

  function setUp(textarea) {
    var field = textarea.closest(".field");
    var label = document.querySelector('label[for="' + textarea.id + '"]');
    var cursor = document.querySelector('[data-cursor-for="' + textarea.id + '"]');

    function showCursor(state) {
      if (!cursor) {
        return;
      }
      var head = state.selection.main.head;
      var line = state.doc.lineAt(head);
      cursor.textContent = "Line " + line.number + ", column " + (head - line.from + 1);
    }

    var contentAttributes = { "aria-multiline": "true" };
    if (label) {
      label.id = label.id || textarea.id + "_label";
      contentAttributes["aria-labelledby"] = label.id;
    }
    ["aria-describedby", "aria-invalid", "aria-required"].forEach(function (name) {
      if (textarea.hasAttribute(name)) {
        contentAttributes[name] = textarea.getAttribute(name);
      }
    });

    var view = new CM.EditorView({
      state: CM.EditorState.create({
        doc: textarea.value,
        extensions: [
          errorField,
          errorGutter,
          CM.lineNumbers(),
          CM.highlightActiveLineGutter(),
          CM.highlightSpecialChars(),
          CM.history(),
          CM.drawSelection(),
          CM.indentOnInput(),
          CM.bracketMatching(),
          CM.highlightActiveLine(),
          CM.syntaxHighlighting(CM.defaultHighlightStyle, { fallback: true }),
          CM.python(),
          CM.indentUnit.of("    "),
          CM.EditorState.tabSize.of(4),
          CM.keymap.of(
            [
              escapeKey,
              { key: "Tab", run: CM.indentMore, shift: CM.indentLess },
            ].concat(CM.defaultKeymap, CM.historyKeymap)
          ),
          CM.EditorView.contentAttributes.of(contentAttributes),
          CM.EditorView.updateListener.of(function (update) {
            if (update.docChanged) {
              textarea.value = update.state.doc.toString();
              // The form's unsaved-changes warning listens for input events.
              textarea.dispatchEvent(new Event("input", { bubbles: true }));
            }
            if (update.docChanged || update.selectionSet || update.focusChanged) {
              showCursor(update.state);
            }
          }),
        ],
      }),
    });
    textarea.parentNode.insertBefore(view.dom, textarea.nextSibling);
    textarea.hidden = true;
    if (label) {
      label.addEventListener("click", function (event) {
        event.preventDefault();
        view.focus();
      });
    }
    if (textarea.form) {
      textarea.form.addEventListener("reset", function () {
        window.setTimeout(function () {
          view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: textarea.value } });
        }, 0);
      });
    }

    function mark(items) {
      view.dispatch({ effects: setErrors.of(items) });
    }

    function jump(line) {
      var number = Math.min(Math.max(line, 1), view.state.doc.lines);
      var target = view.state.doc.line(number);
      view.dispatch({
        selection: { anchor: target.from, head: target.to },
        effects: CM.EditorView.scrollIntoView(target.from, { y: "center" }),
      });
      view.focus();
    }

    textarea.addEventListener("code-errors", function (event) {
      var errors = (event.detail && event.detail.errors) || [];
      mark(parseErrors(errors));
    });

    // The form's own "Line N: ..." errors: marked now, and each one jumps to its line.
    var items = field ? field.querySelectorAll(".field-errors li") : [];
    var texts = [];
    Array.prototype.forEach.call(items, function (item) {
      var text = item.textContent.trim();
      texts.push(text);
      var found = parseErrors([text]);
      if (!found.length) {
        return;
      }
      var line = found[0].line;
      item.classList.add("is-line-link");
      item.setAttribute("tabindex", "0");
      item.setAttribute("role", "link");
      item.setAttribute("title", "Go to line " + line);
      item.addEventListener("click", function () {
        jump(line);
      });
      item.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          jump(line);
        }
      });
    });
    mark(parseErrors(texts));
    showCursor(view.state);
  }

  Array.prototype.forEach.call(document.querySelectorAll(".code-field textarea.code-input"), setUp);
})();
