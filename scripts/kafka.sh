#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft) broker for development and tests.
#
#   scripts/kafka.sh start   [--port N] [--proxy-ports P1,P2] [--sasl-ssl-port S]
#                                         resolve jars (cached), format storage, start, wait for metadata
#   scripts/kafka.sh stop    [--port N]   stop cleanly (SIGTERM, then SIGKILL after 30 s)
#   scripts/kafka.sh status  [--port N]   running or not, and the bootstrap address
#   scripts/kafka.sh logs    [--port N]   follow the broker log
#   scripts/kafka.sh topic NAME [PARTS]   create a topic if it does not exist (default 3 partitions)
#   scripts/kafka.sh jars                 only resolve the jars (used by CI to warm the cache)
#
# The broker listens on 127.0.0.1:PORT (default 19092) and its controller on PORT+1.
# --proxy-ports adds listener i on PORT+2+i advertised as 127.0.0.1:Pi, so a client
# that reaches the broker through a TCP proxy on Pi stays on that proxy (cut it to
# cut that client off from Kafka, as the walkthrough does with toxiproxy).
# --sasl-ssl-port adds a SASL_SSL listener on 127.0.0.1:S that requires a client certificate and
# SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) as user edge-bridge, password edge-bridge-secret (dev
# only). A fresh CA, broker and client certificate are made with openssl in .kafka/PORT/tls/
# (ca.crt, client.crt, client.key); the SCRAM credentials are set at each start. PORT stays PLAINTEXT.
# Jars come from Maven Central through scripts/kafka/pom.xml and are cached in
# $EDGE_BRIDGE_CACHE (default ~/.cache/edge-bridge). State lives in .kafka/PORT/ in the repo.
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd="${1:-}"; [ $# -gt 0 ] && shift
port="${KAFKA_PORT:-19092}"
positional=()
proxy_ports=""
sasl_ssl_port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="${2:?--port needs a number}"; shift 2 ;;
    --port=*) port="${1#--port=}"; shift ;;
    --proxy-ports) proxy_ports="${2:?--proxy-ports needs P1[,P2...]}"; shift 2 ;;
    --sasl-ssl-port) sasl_ssl_port="${2:?--sasl-ssl-port needs a number}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "kafka.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
case "$port" in ''|*[!0-9]*) echo "kafka.sh: --port must be a number, got '$port'" >&2; exit 2 ;; esac
case "$sasl_ssl_port" in *[!0-9]*) echo "kafka.sh: --sasl-ssl-port must be a number, got '$sasl_ssl_port'" >&2; exit 2 ;; esac

kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/kafka/pom.xml")"
cache="${EDGE_BRIDGE_CACHE:-$HOME/.cache/edge-bridge}"
jars="$cache/kafka-$kafka_version/libs"
state="$root/.kafka/$port"
pidfile="$state/broker.pid"
logfile="$state/broker.log"

resolve_jars() {
  if [ -f "$jars/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: Maven (mvn) is needed to fetch the Kafka jars" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: Java 17+ is needed to run the broker" >&2; exit 1; }
  echo "kafka.sh: resolving Apache Kafka $kafka_version jars from Maven Central into $jars ..." >&2
  rm -rf "$jars"; mkdir -p "$jars"
  mvn -q -B -f "$root/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars" >&2
  touch "$jars/.complete"
}

sasl_user="edge-bridge"
sasl_password="edge-bridge-secret"

# A CA, a broker certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA.
# Kafka reads PEM directly (ssl.keystore.type=PEM): the key is unencrypted PKCS#8, then the chain.
make_tls() {
  local dir="$state/tls"
  if [ -f "$dir/.complete" ]; then return 0; fi
  command -v openssl >/dev/null || { echo "kafka.sh: openssl is needed for --sasl-ssl-port" >&2; exit 1; }
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=edge-bridge dev Kafka CA" 2>/dev/null
    for who in broker client; do
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$who.key" 2>/dev/null
      openssl req -new -key "$who.key" -out "$who.csr" -subj "/CN=edge-bridge dev $who" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$who.ext"
      openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$who.ext" -out "$who.crt" 2>/dev/null
    done
    cat broker.key broker.crt ca.crt > broker.pem
    rm -f ./*.csr ./*.ext ca.srl
  )
  touch "$dir/.complete"
}

# SCRAM credentials live in the cluster metadata: set them (again) through the plaintext listener.
# One mechanism per request: Kafka refuses two changes to one user's credentials in a request.
add_scram_user() {
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    java -Dlog4j2.configurationFile="$root/scripts/kafka/log4j2-tools.yaml" -cp "$jars/*" \
      kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$port" --alter --entity-type users \
      --entity-name "$sasl_user" --add-config "$mechanism=[password=$sasl_password]" >/dev/null
  done
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

serves_metadata() {
  if command -v kcat >/dev/null; then
    kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && grep -q "started" "$logfile" 2>/dev/null
  fi
}

start() {
  resolve_jars
  if running; then echo "kafka.sh: already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  local controller=$((port + 1))
  for p in "$port" "$controller" $sasl_ssl_port; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "kafka.sh: port $p is already in use by another process (not this checkout's broker); stop it or use --port" >&2
      exit 1
    fi
  done
  mkdir -p "$state"
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  local i=0 p
  for p in ${proxy_ports//,/ }; do
    listeners="$listeners,PROXY$i://127.0.0.1:$((port + 2 + i))"
    advertised="$advertised,PROXY$i://127.0.0.1:$p"
    protocols="$protocols,PROXY$i:PLAINTEXT"
    i=$((i + 1))
  done
  local sasl_props=""
  if [ -n "$sasl_ssl_port" ]; then
    make_tls
    listeners="$listeners,SASL_SSL://127.0.0.1:$sasl_ssl_port"
    advertised="$advertised,SASL_SSL://127.0.0.1:$sasl_ssl_port"
    protocols="$protocols,SASL_SSL:SASL_SSL"
    sasl_props="sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$sasl_user=\"$sasl_password\";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$state/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$state/tls/ca.crt"
  fi
  cat > "$state/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
inter.broker.listener.name=PLAINTEXT
log.dirs=$state/data
num.partitions=1
auto.create.topics.enable=false
# A single node must keep its internal topics at replication factor 1, or groups
# and transactions never find a coordinator.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
$sasl_props
PROPS
  local cp="$jars/*"
  if [ ! -f "$state/data/meta.properties" ]; then
    # shellcheck disable=SC2086
    java -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid)" \
      -c "$state/server.properties" ${KAFKA_FORMAT_FEATURES:-} >/dev/null
  fi
  echo "kafka.sh: starting Kafka $kafka_version on 127.0.0.1:$port (log: $logfile)" >&2
  KAFKA_HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/scripts/kafka/log4j2.yaml" \
    -cp "$cp" kafka.Kafka "$state/server.properties" >"$logfile" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  local waited=0
  until serves_metadata; do
    if ! running; then echo "kafka.sh: broker exited during start; last log lines:" >&2; tail -20 "$logfile" >&2; exit 1; fi
    if [ $waited -ge 120 ]; then echo "kafka.sh: broker did not serve metadata within 60 s" >&2; exit 1; fi
    sleep 0.5; waited=$((waited + 1))
    [ $((waited % 10)) -eq 0 ] && echo "kafka.sh: waiting for the broker ($((waited / 2)) s) ..." >&2
  done
  if [ -n "$sasl_ssl_port" ]; then
    add_scram_user
    echo "kafka.sh: SASL_SSL at 127.0.0.1:$sasl_ssl_port (user $sasl_user; CA and client certificate in $state/tls)" >&2
  fi
  echo "kafka.sh: Kafka is up at 127.0.0.1:$port" >&2
}

stop() {
  if ! running; then echo "kafka.sh: not running on port $port"; rm -f "$pidfile"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then echo "kafka.sh: broker ignored SIGTERM for 30 s; killing" >&2; kill -KILL "$pid"; fi
  rm -f "$pidfile"
  echo "kafka.sh: stopped broker on port $port" >&2
}

topic() {
  local name="${positional[0]:-}" parts="${positional[1]:-3}"
  [ -n "$name" ] || { echo "kafka.sh topic: needs a topic name" >&2; exit 2; }
  resolve_jars
  java -Dlog4j2.configurationFile="$root/scripts/kafka/log4j2-tools.yaml" -cp "$jars/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1
  echo "kafka.sh: topic $name is ready ($parts partitions requested)" >&2
}

case "$cmd" in
  start) start ;;
  topic) topic ;;
  stop) stop ;;
  status) if running; then echo "running: 127.0.0.1:$port (pid $(cat "$pidfile"))"; else echo "stopped (port $port)"; exit 3; fi ;;
  logs) exec tail -n 100 -F "$logfile" ;;
  jars) resolve_jars; echo "$jars" ;;
  -h|--help|help|"") usage; [ -n "$cmd" ] || exit 2 ;;
  *) echo "kafka.sh: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac
