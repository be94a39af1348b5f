#!/usr/bin/env bash
# The JMS Bridge HA walkthrough (shared/seed-walkthrough.md), with processes instead of containers.
#
#   scripts/ha-demo.sh start [heartbeat|file-lock]  Kafka + live + backup + producer + consumer (default: heartbeat)
#   scripts/ha-demo.sh stop-live                    SIGTERM the live: the backup takes over
#   scripts/ha-demo.sh kill-live                    kill -9 the live: the backup takes over after the dead interval
#   scripts/ha-demo.sh start-live                   start it again: it takes back over after the hold-down (failback)
#   scripts/ha-demo.sh cut-kafka <live|backup>      cut that node's link to Kafka (its TCP proxy stops)
#   scripts/ha-demo.sh restore-kafka <live|backup>  restore it
#   scripts/ha-demo.sh status                       roles from /readyz
#   scripts/ha-demo.sh logs <live|backup|producer|consumer|kafka>
#   scripts/ha-demo.sh down                         stop everything
#
# "live" and "backup" name the two nodes as they were started (node-live has the
# higher priority); after a failover the backup node is the one serving.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
demo=".ha-demo"
KAFKA_PORT=19592
declare -A HTTP=([live]=8081 [backup]=8082) HB=([live]=7946 [backup]=7947) PROXY=([live]=19691 [backup]=19692)
declare -A TARGET=([live]=$((KAFKA_PORT + 2)) [backup]=$((KAFKA_PORT + 3))) PRIO=([live]=200 [backup]=100)
deno=""

node_name() { case "${1:-}" in live|backup) echo "$1" ;; *) echo "ha-demo: name a node: live or backup" >&2; exit 2 ;; esac; }
pid_of() { cat "$demo/$1.pid" 2>/dev/null || true; }
alive() { local p; p="$(pid_of "$1")"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
spawn() { # name, command...
  local name="$1"; shift
  nohup "$@" >>"$demo/$name.log" 2>&1 < /dev/null &
  echo $! > "$demo/$name.pid"
}

start_proxy() { spawn "proxy-$1" "$deno" run --allow-net scripts/tcp-proxy.ts --listen "${PROXY[$1]}" --target "${TARGET[$1]}"; }

start_node() {
  local n="$1" other; other=$([ "$1" = live ] && echo backup || echo live)
  spawn "$n" env EDGE_BRIDGE_NODE_ID="node-$n" EDGE_BRIDGE_KAFKA_BROKERS="127.0.0.1:${PROXY[$n]}" \
    EDGE_BRIDGE_HA_MODE="$(cat "$demo/mode")" EDGE_BRIDGE_HA_PRIORITY="${PRIO[$n]}" \
    EDGE_BRIDGE_HA_ADVERTISED_URL="ws://127.0.0.1:${HTTP[$n]}/ws" EDGE_BRIDGE_HA_DATA_DIR="$demo/data-$n" \
    EDGE_BRIDGE_HA_FILE_LOCK_DIR="$demo/shared" \
    EDGE_BRIDGE_HA_HEARTBEAT_LISTEN="127.0.0.1:${HB[$n]}" EDGE_BRIDGE_HA_HEARTBEAT_PEERS="127.0.0.1:${HB[$other]}" \
    EDGE_BRIDGE_HA_HEARTBEAT_KEY_FILE="$demo/heartbeat.key" \
    "$deno" run --allow-net --allow-env --allow-read --allow-write --allow-sys=hostname main.ts serve --port "${HTTP[$n]}"
  echo "ha-demo: started node-$n (ws://127.0.0.1:${HTTP[$n]}/ws), log $demo/$n.log"
}

status() {
  for n in live backup; do
    printf 'node-%-7s %s\n' "$n" "$(curl -s --max-time 1 "localhost:${HTTP[$n]}/readyz" || echo down)"
  done
}

stop_pid() { # name, signal
  local p; p="$(pid_of "$1")"
  [ -n "$p" ] && kill "-${2:-TERM}" "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
  rm -f "$demo/$1.pid"
}

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  start)
    mode="${1:-heartbeat}"
    case "$mode" in heartbeat|file-lock) ;; *) echo "ha-demo: mode must be heartbeat or file-lock" >&2; exit 2 ;; esac
    deno="$(scripts/ensure-deno.sh)"
    mkdir -p "$demo"; echo "$mode" > "$demo/mode"
    # The pair's shared heartbeat key (heartbeat mode requires one): 48 random bytes, base64.
    [ -s "$demo/heartbeat.key" ] || (umask 077; head -c 48 /dev/urandom | base64 -w0 > "$demo/heartbeat.key")
    scripts/kafka.sh start --port "$KAFKA_PORT" --proxy-ports "${PROXY[live]},${PROXY[backup]}"
    ln -sf "$root/.kafka/$KAFKA_PORT/broker.log" "$demo/kafka.log"
    scripts/kafka.sh topic test 3 --port "$KAFKA_PORT"
    start_proxy live; start_proxy backup
    start_node live; sleep 3; start_node backup; sleep 2
    urls=(-u "ws://127.0.0.1:${HTTP[live]}/ws" -u "ws://127.0.0.1:${HTTP[backup]}/ws")
    spawn producer "$deno" run --allow-net --allow-env --allow-read --allow-write --allow-sys main.ts produce "${urls[@]}"
    spawn consumer "$deno" run --allow-net --allow-env --allow-read --allow-write --allow-sys main.ts consume "${urls[@]}" --from earliest
    status
    cat <<TXT

What to watch (each in its own terminal):
  kcat -C -b 127.0.0.1:$KAFKA_PORT -t test          # what Kafka holds (independent reader)
  scripts/ha-demo.sh logs producer                  # acks; "Trying again..." on failover
  scripts/ha-demo.sh logs consumer                  # messages with their positions
  scripts/ha-demo.sh logs live | grep '"ha":true'   # "live: obtained the live ...", "backup announced"
Then: scripts/ha-demo.sh stop-live, start-live, cut-kafka live, restore-kafka live, down.
TXT
    ;;
  stop-live) stop_pid live TERM; echo "ha-demo: node-live stopped (SIGTERM)"; sleep 1; status ;;
  kill-live) stop_pid live KILL; echo "ha-demo: node-live killed (SIGKILL)"; sleep 1.5; status ;;
  start-live) deno="$(scripts/ensure-deno.sh)"; alive live && { echo "ha-demo: node-live is running"; exit 0; }; start_node live; sleep 4; status ;;
  cut-kafka) n="$(node_name "${1:-}")"; stop_pid "proxy-$n" TERM; echo "ha-demo: node-$n is cut off from Kafka"; ;;
  restore-kafka) n="$(node_name "${1:-}")"; deno="$(scripts/ensure-deno.sh)"; alive "proxy-$n" || start_proxy "$n"; echo "ha-demo: node-$n reaches Kafka again" ;;
  status) status ;;
  logs) n="${1:-}"; [ -f "$demo/$n.log" ] || { echo "ha-demo: no log $n (live, backup, producer, consumer, kafka)" >&2; exit 2; }; exec tail -n 50 -F "$demo/$n.log" ;;
  down)
    for p in producer consumer live backup proxy-live proxy-backup; do stop_pid "$p" TERM; done
    scripts/kafka.sh stop --port "$KAFKA_PORT"; echo "ha-demo: everything stopped (logs stay in $demo/)" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
