#!/usr/bin/env bash
# Fuzz the REST API against its own OpenAPI schema with schemathesis: a live server (gunicorn)
# on a fresh SQLite database with demo data and an all-permissions token; the run fails on any
# server error (5xx) or any answer that does not match the schema.
# Usage: bash scripts/api_fuzz.sh [extra schemathesis arguments]   (scripts/test.sh calls it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export DATABASE_URL="sqlite:///$WORK/fuzz.sqlite3"
export SCHEDULED_TASKS_EMBEDDED=false DEBUG=false
PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py seed_demo >/dev/null
TOKEN="$(.venv/bin/python manage.py shell -c '
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user, _ = User.objects.get_or_create(username="fuzz", defaults={"is_superuser": True, "is_staff": True})
user.is_superuser = True
user.save()
print(Token.objects.get_or_create(user=user)[0].key)
' 2>/dev/null | tail -n 1)"

.venv/bin/gunicorn ticketproo.wsgi --bind "127.0.0.1:$PORT" --workers 2 --timeout 60 \
  --log-level warning >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

echo "== schemathesis against http://127.0.0.1:$PORT/api/schema/"
status=0
.venv/bin/schemathesis run "http://127.0.0.1:$PORT/api/schema/?format=json" \
  --wait-for-schema 30 \
  --header "Authorization: Token $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${FUZZ_EXAMPLES:-25}" --seed 20261207 --no-color --workers 1 \
  --generation-database none --request-timeout 60 "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "-- server log:"; tail -n 80 "$WORK/server.log"
fi
exit "$status"
