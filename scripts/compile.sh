#!/usr/bin/env bash
# Builds the single binary dist/edge-bridge with `deno compile`.
#
#   scripts/compile.sh [--target TRIPLE] [extra deno compile flags...]   (output: $COMPILE_OUTPUT or dist/edge-bridge)
#
# deno compile downloads its runtime (denort) from dl.deno.land; on a machine
# without that access set DENORT_BIN to a local denort. Permissions are fixed at
# build time: net (listen, Kafka), env (EDGE_BRIDGE_*), read (config file), write (HA epoch and lock files), sys (hostname).
#
# Why the --exclude: deno 2.9's compile overflows its stack on the test data that
# the npm package bintrees (pulled in by prom-client through tdigest) ships in its
# test/ folder. The folder is never loaded at run time, so it is left out.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
case "${1:-}" in -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
deno="$(scripts/ensure-deno.sh)"
npm_cache="$("$deno" info --json | sed -n 's/.*"npmCache": *"\([^"]*\)".*/\1/p')"
[ -n "$npm_cache" ] || { echo "compile.sh: cannot find Deno's npm cache (deno info --json)" >&2; exit 1; }
"$deno" cache main.ts >/dev/null
excludes=()
for dir in "$npm_cache"/registry.npmjs.org/bintrees/*/test; do
  [ -d "$dir" ] && excludes+=(--exclude "$dir")
done
# --unstable-net: unix datagram sockets, for systemd's sd_notify (READY=1, WATCHDOG=1) only.
exec "$deno" compile \
  --allow-net --allow-env --allow-read --allow-write --allow-sys --unstable-net \
  --exclude-unused-npm "${excludes[@]}" \
  --output "${COMPILE_OUTPUT:-dist/edge-bridge}" "$@" main.ts
