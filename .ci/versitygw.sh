#!/usr/bin/env bash
# Starts versitygw (the real S3 server the s3 backend tests and `gatehouse
# bench s3` run against) on loopback with a posix backend and fixed root
# credentials, with bucket versioning (and so object lock) enabled. Installs it first if missing. Idempotent: if one is already
# answering on the port, it is reused (unless GATEHOUSE_CI_NO_REUSE is set). The last line printed is the endpoint.
#
#   VERSITYGW_PORT (default 7070), VERSITYGW_DIR (default /tmp/gatehouse-versitygw)
#   access key: gatehouse-test   secret: gatehouse-test-secret   region: us-east-1
set -euo pipefail
export PATH="/usr/local/go/bin:$HOME/go/bin:$(go env GOPATH 2>/dev/null)/bin:$PATH"
PORT="${VERSITYGW_PORT:-7070}"
DIR="${VERSITYGW_DIR:-/tmp/gatehouse-versitygw}"
ENDPOINT="http://127.0.0.1:${PORT}"

up() { curl -s -o /dev/null --max-time 2 "$ENDPOINT/" ; }

if ! command -v versitygw >/dev/null 2>&1; then
  echo "installing versitygw v1.8.0 (about 2 minutes)" >&2
  (cd /tmp && GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)
fi

if up && [ -n "${GATEHOUSE_CI_NO_REUSE:-}" ]; then
  echo "something already answers on $ENDPOINT, and GATEHOUSE_CI_NO_REUSE forbids reusing a server this run did not start" >&2
  exit 1
fi
if ! up; then
  mkdir -p "$DIR/data" "$DIR/sidecar" "$DIR/versions"
  ROOT_ACCESS_KEY=gatehouse-test ROOT_SECRET_KEY=gatehouse-test-secret \
    nohup versitygw --port "127.0.0.1:${PORT}" --quiet --keep-alive \
    posix --sidecar "$DIR/sidecar" --versioning-dir "$DIR/versions" "$DIR/data" >"$DIR/versitygw.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/versitygw.pid"
  # However long a loaded machine takes to start it: fail only if it exits,
  # or after 5 minutes, which guards against a hang, not a slow start.
  for _ in $(seq 1 3000); do
    up && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  up || { echo "versitygw did not start; log:" >&2; cat "$DIR/versitygw.log" >&2; exit 1; }
fi
echo "$ENDPOINT"
