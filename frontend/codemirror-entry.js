// The parts of CodeMirror 6 the task form's editor uses (scheduled_tasks/static/scheduled_tasks/
// editor.js), bundled by scripts/build_vendor.sh into one file that sets window.TPCodeMirror.
export { EditorState, StateEffect, StateField, RangeSet } from "@codemirror/state";
export {
  Decoration,
  EditorView,
  GutterMarker,
  drawSelection,
  gutter,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";
export {
  defaultKeymap,
  history,
  historyKeymap,
  indentLess,
  indentMore,
  simplifySelection,
  temporarilySetTabFocusMode,
} from "@codemirror/commands";
export {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
export { python } from "@codemirror/lang-python";
