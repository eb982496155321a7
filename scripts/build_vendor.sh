#!/usr/bin/env bash
# Rebuild the vendored front-end bundle from the versions pinned in frontend/package-lock.json:
#   scheduled_tasks/static/scheduled_tasks/vendor/codemirror.js   (minified, one IIFE)
#   scheduled_tasks/static/scheduled_tasks/vendor/codemirror.LICENSE.txt
# Needs node 20+ and npm with access to the npm registry. CI does not run this: the output is
# committed, and running this again on the same lock file reproduces it byte for byte.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
frontend="$root/frontend"
vendor="$root/scheduled_tasks/static/scheduled_tasks/vendor"

cd "$frontend"
npm ci --no-audit --no-fund
mkdir -p "$vendor"
npm run --silent build
node license-notice.js > "$vendor/codemirror.LICENSE.txt"
echo "built $(wc -c < "$vendor/codemirror.js") bytes: $vendor/codemirror.js"
