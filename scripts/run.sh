#!/usr/bin/env bash
# Runs the bridge on its defaults, with everything it needs on a fresh machine.
#
#   scripts/run.sh [edge-bridge serve options...]
#
# Installs Deno if missing, starts the dev Kafka broker (scripts/kafka.sh, port
# 19092) unless EDGE_BRIDGE_KAFKA_BROKERS names a cluster, creates the demo topic
# "test" (3 partitions) as the JMS Bridge walkthrough does, then runs
# `edge-bridge serve` in the foreground: ws://127.0.0.1:8080/ws. Ctrl-C stops the
# bridge; the broker keeps running (scripts/kafka.sh stop).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
case "${1:-}" in -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

deno="$(scripts/ensure-deno.sh)"
if [ -z "${EDGE_BRIDGE_KAFKA_BROKERS:-}" ]; then
  scripts/kafka.sh start
  scripts/kafka.sh topic test 3
fi
exec "$deno" run --allow-net --allow-env --allow-read --allow-write --allow-sys main.ts serve "$@"
