#!/usr/bin/env bash
# Builds the single binary with `deno compile`.
#
#   scripts/compile.sh                     dist/edge-bridge, for this machine
#   scripts/compile.sh --target TRIPLE     dist/edge-bridge-TRIPLE (.exe for Windows)
#   scripts/compile.sh --all-targets       every release target, one after the other
#   COMPILE_OUTPUT=FILE scripts/compile.sh ...   another output file (one target)
#
# Targets: x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin
# aarch64-apple-darwin x86_64-pc-windows-msvc. `edge-bridge version` prints the target built for.
#
# deno compile downloads its runtime (denort) for the target from dl.deno.land; on a machine
# without that access set DENORT_BIN to a local denort for the target.
#
# Flags baked into the binary, the fewest it runs with, each for a reason:
#   --allow-net            listen for clients, reach Kafka, send and receive HA heartbeats (UDP), and bind
#                          the abstract unix socket sd_notify sends from (Deno checks it as net, not as a file)
#   --allow-env            configuration (EDGE_BRIDGE_*), NOTIFY_SOCKET and WATCHDOG_* from systemd, and
#                          the variables kafkajs, pino and ws read; a list would break on their next release
#   --allow-read           the config file, the HA lock and state files
#   --allow-write          the HA epoch, state and lock files
#   --allow-sys=hostname   the default node id (node.id) and the log's hostname; nothing else of the OS
#   --unstable-net         unix datagram sockets, for systemd's sd_notify (READY=1, WATCHDOG=1) only
# tests/helpers/bridge.ts runs every integration test with the same permissions.
#
# Why the --exclude: deno 2.9's compile overflows its stack on the test data that
# the npm package bintrees (pulled in by prom-client through tdigest) ships in its
# test/ folder. The folder is never loaded at run time, so it is left out.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
case "${1:-}" in -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin
  x86_64-pc-windows-msvc)
if [ "${1:-}" = "--all-targets" ]; then
  shift
  [ -z "${COMPILE_OUTPUT:-}" ] || { echo "compile.sh: COMPILE_OUTPUT names one file; not with --all-targets" >&2; exit 2; }
  for t in "${TARGETS[@]}"; do
    echo "compile.sh: building $t" >&2
    "$0" --target "$t" "$@"
  done
  exit 0
fi
target=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--target" ]; then target="${args[$((i + 1))]:-}"; fi
done
if [ -n "$target" ] && [[ ! " ${TARGETS[*]} " == *" $target "* ]]; then
  echo "compile.sh: unknown target \"$target\"; one of: ${TARGETS[*]}" >&2
  exit 2
fi
output="dist/edge-bridge"
if [ -n "$target" ]; then
  output="dist/edge-bridge-$target"
  case "$target" in *windows*) output="$output.exe" ;; esac
fi
output="${COMPILE_OUTPUT:-$output}"
deno="$(scripts/ensure-deno.sh)"
npm_cache="$("$deno" info --json | sed -n 's/.*"npmCache": *"\([^"]*\)".*/\1/p')"
[ -n "$npm_cache" ] || { echo "compile.sh: cannot find Deno's npm cache (deno info --json)" >&2; exit 1; }
"$deno" cache main.ts >/dev/null
excludes=()
for dir in "$npm_cache"/registry.npmjs.org/bintrees/*/test; do
  [ -d "$dir" ] && excludes+=(--exclude "$dir")
done
exec "$deno" compile \
  --allow-net --allow-env --allow-read --allow-write --allow-sys=hostname --unstable-net \
  --exclude-unused-npm "${excludes[@]}" \
  --output "$output" "$@" main.ts
