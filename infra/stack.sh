#!/usr/bin/env bash
# Native stack supervisor for machines without Docker.
#
#   infra/stack.sh fetch                 gather Kafka, Connect, Debezium and Apicurio from Maven Central
#   infra/stack.sh up [service...]       start services in order and wait until each is ready (idempotent)
#   infra/stack.sh stop service...       stop the named services
#   infra/stack.sh down                  stop everything this project started, in reverse order
#   infra/stack.sh purge                 down, then delete all data (databases, topics, logs); keeps downloads
#   infra/stack.sh status                one line per service
#   infra/stack.sh logs [service]        tail the logs
#   infra/stack.sh urls                  print the endpoints
#
# Services, in start order: postgres redis kafka registry connect (the stack), then web worker-portfolio
# worker-intel (the application, started only when named). Every process is started in its own session and
# remembered by PID under $STACK_HOME/run; `down` stops exactly those PIDs and nothing else.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_HOME=${STACK_HOME:-$ROOT/.stack}
DIST=${STACK_DIST:-$STACK_HOME/dist}
DATA=$STACK_HOME/data
RUN=$STACK_HOME/run
LOGS=$STACK_HOME/logs
CONF=$STACK_HOME/conf
# shellcheck source=infra/stack.env
source "$ROOT/infra/stack.env"

PG_VERSION=15
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
PG_OS_USER=postgres
STACK_SERVICES=(postgres redis kafka registry connect)
APP_SERVICES=(web worker-portfolio worker-intel)

say() { printf '%s %s\n' "[stack]" "$*"; }
die() { printf '%s %s\n' "[stack] ERROR:" "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# PostgreSQL refuses to run as root, and a fresh clone may sit below a directory the postgres user cannot
# enter (mktemp -d is 0700), so as root the cluster lives in a per-checkout directory under /var/tmp.
pg_data_dir() {
  if [ "$(id -u)" -eq 0 ]; then
    echo "/var/tmp/hashinsight-$(printf '%s' "$STACK_HOME" | sha1sum | cut -c1-10)/pgdata"
  else
    echo "$DATA/postgres"
  fi
}
pg_run() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

# ---------------------------------------------------------------------------------------------- install

ensure_packages() {
  local missing=()
  [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-$PG_VERSION)
  command -v psql >/dev/null || missing+=(postgresql-client-$PG_VERSION)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v kcat >/dev/null || missing+=(kcat)
  command -v mvn >/dev/null || missing+=(maven)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v curl >/dev/null || missing+=(curl)
  # Lints docker-compose.yml in the tests on machines without the compose plugin.
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [ ${#missing[@]} -eq 0 ]; then
    ensure_pg_user
    return 0
  fi
  say "installing from Debian: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The packages' own PostgreSQL cluster and Redis service, if apt starts them, are not used: ours run on other ports.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install failed; see $LOGS/apt.log"; }
  ensure_pg_user
}

# As root the cluster runs as this user; an image may carry the server binaries without the package's user.
ensure_pg_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  say "creating the system user $PG_OS_USER for PostgreSQL"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin "$PG_OS_USER"
}

# Re-run Maven only when a POM changed since the last successful fetch.
fetch() {
  mkdir -p "$DIST" "$LOGS"
  ensure_packages
  local stamp
  stamp=$(cat "$ROOT"/infra/pom.xml "$ROOT"/infra/*/pom.xml "$ROOT"/infra/stub-repo/io/apicurio/*/*/*.pom | sha1sum | cut -c1-16)
  if [ -f "$DIST/.fetched-$stamp" ] && [ -n "$(registry_jar)" ]; then
    return 0
  fi
  local s
  for s in kafka registry connect; do
    alive "$s" && die "the JVM pieces changed (infra/*.pom); stop the stack first: make stack-down"
  done
  say "fetching Kafka, Kafka Connect, Debezium and Apicurio Registry from Maven Central (first run: a few minutes)"
  local t0=$SECONDS
  rm -rf "$DIST" && mkdir -p "$DIST"
  if ! mvn -B -q -f "$ROOT/infra/pom.xml" -Dstack.dist="$DIST" package >"$LOGS/fetch.log" 2>&1; then
    grep -E 'ERROR' "$LOGS/fetch.log" | head -5 >&2
    die "Maven could not gather the stack; see $LOGS/fetch.log"
  fi
  touch "$DIST/.fetched-$stamp"
  say "fetched in $((SECONDS - t0)) s ($(du -sh "$DIST" | cut -f1))"
}

registry_jar() {
  find "$DIST/apicurio-registry" -maxdepth 2 \( -name 'quarkus-run.jar' -o -name '*-runner.jar' \) 2>/dev/null | head -1
}

# ---------------------------------------------------------------------------------------------- processes

pidfile() { echo "$RUN/$1.pid"; }

# A PID counts as ours only while its command line still names this stack (guards against PID reuse).
alive() {
  local f pid
  f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(marker "$1")"
}

# A string each service's command line carries, used by `alive`.
marker() {
  case $1 in
    postgres) pg_data_dir ;;
    redis) echo "127.0.0.1:$REDIS_PORT" ;;
    web) echo "app.entrypoints.serve" ;;
    worker-portfolio) echo "workers.portfolio_consumer" ;;
    worker-intel) echo "workers.intel_consumer" ;;
    *) echo "hashinsight.service=$1" ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_port() {
  local svc=$1 port=$2
  if port_open "$port"; then
    die "$svc: port $port on 127.0.0.1 is taken by a process this stack did not start; stop it or set the port in infra/stack.env"
  fi
}

# Start a command detached in its own session, output appended to the service log, PID recorded.
spawn() {
  local svc=$1; shift
  mkdir -p "$RUN" "$LOGS"
  printf '\n=== %s start %s ===\n' "$svc" "$(date -u +%FT%TZ)" >>"$LOGS/$svc.log"
  setsid "$@" >>"$LOGS/$svc.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$svc")"
}

# wait_ready SERVICE TIMEOUT CHECK-COMMAND...: poll until the check passes, the process dies, or time runs out.
wait_ready() {
  local svc=$1 timeout=$2; shift 2
  local t0=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    if ! alive "$svc"; then
      tail -25 "$LOGS/$svc.log" >&2 || true
      die "$svc exited during start-up; see $LOGS/$svc.log"
    fi
    if (( SECONDS - t0 >= timeout )); then
      tail -25 "$LOGS/$svc.log" >&2 || true
      die "$svc not ready after ${timeout}s; see $LOGS/$svc.log"
    fi
    sleep 0.5
  done
  say "$svc ready in $((SECONDS - t0)) s"
}

stop_service() {
  local svc=$1 f pid
  f=$(pidfile "$svc")
  if ! alive "$svc"; then
    rm -f "$f"
    return 0
  fi
  pid=$(cat "$f")
  if [ "$svc" = postgres ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$(pg_data_dir)" stop -m fast -w -t 60 >/dev/null 2>&1 || true
  else
    # The whole session: a JVM or a server with its worker processes.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  fi
  local i
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$svc did not stop in 30 s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
  say "$svc stopped"
}

# ---------------------------------------------------------------------------------------------- postgres

psql_admin() {
  PGPASSWORD=postgres psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

start_postgres() {
  local pgdata
  pgdata=$(pg_data_dir)
  if [ ! -s "$pgdata/PG_VERSION" ]; then
    say "postgres: initialising a cluster in $pgdata"
    mkdir -p "$pgdata"
    if [ "$(id -u)" -eq 0 ]; then
      chown -R "$PG_OS_USER": "$(dirname "$pgdata")"
      chmod 700 "$(dirname "$pgdata")"
      mkdir -p "$DATA" && ln -sfn "$pgdata" "$DATA/postgres"
    fi
    local pw
    pw=$(mktemp) && echo postgres >"$pw" && chmod 644 "$pw"
    pg_run "$PG_BIN/initdb" -D "$pgdata" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 || { rm -f "$pw"; die "initdb failed; see $LOGS/postgres-initdb.log"; }
    rm -f "$pw"
  fi
  # Written on every start so a change here reaches existing clusters.
  pg_run tee "$pgdata/hashinsight.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$pgdata'
max_connections = 200
shared_buffers = 256MB
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = 2GB
wal_sender_timeout = 60s
fsync = on
synchronous_commit = on
logging_collector = off
log_min_duration_statement = 1000
timezone = 'UTC'
log_timezone = 'UTC'
EOF
  grep -q "include_if_exists = 'hashinsight.conf'" "$pgdata/postgresql.conf" ||
    echo "include_if_exists = 'hashinsight.conf'" | pg_run tee -a "$pgdata/postgresql.conf" >/dev/null
  rm -f "$pgdata/postmaster.pid.stale"
  require_free_port postgres "$PG_PORT"
  if [ "$(id -u)" -eq 0 ]; then
    spawn postgres runuser -u "$PG_OS_USER" -- "$PG_BIN/postgres" -D "$pgdata"
  else
    spawn postgres "$PG_BIN/postgres" -D "$pgdata"
  fi
  wait_ready postgres "$PG_START_TIMEOUT" pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
  # runuser stays as the parent; the postmaster's own PID is what pg_ctl and `alive` need.
  head -1 "$pgdata/postmaster.pid" >"$(pidfile postgres)"
  bootstrap_postgres
}

# Databases the stack itself needs; the application's schema comes from migrations/ (make migrate).
bootstrap_postgres() {
  local db
  for db in hashinsight registry; do
    if [ -z "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_admin -d postgres -c "CREATE DATABASE $db"
    fi
  done
  psql_admin -d postgres <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'registry') THEN
    CREATE ROLE registry LOGIN PASSWORD 'registry';
  END IF;
END $$;
ALTER DATABASE registry OWNER TO registry;
SQL
}

# ---------------------------------------------------------------------------------------------- redis

start_redis() {
  mkdir -p "$DATA/redis"
  require_free_port redis "$REDIS_PORT"
  # Cache, locks and rate-limit counters only: nothing here needs to survive a restart.
  spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" --save '' --appendonly no \
    --maxmemory 256mb --maxmemory-policy volatile-lru --daemonize no
  wait_ready redis "$REDIS_START_TIMEOUT" sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG"
}

# ---------------------------------------------------------------------------------------------- kafka

write_log4j() {
  mkdir -p "$CONF"
  cat >"$CONF/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafkalog.name = kafka.log
logger.kafkalog.level = warn
logger.reflections.name = org.reflections
logger.reflections.level = error
logger.coordinator.name = org.apache.kafka.coordinator
logger.coordinator.level = warn
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
EOF
}

java_cmd() { echo "${JAVA_HOME:+$JAVA_HOME/bin/}java"; }

start_kafka() {
  mkdir -p "$DATA/kafka" "$CONF"
  write_log4j
  cat >"$CONF/kafka.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/kafka
num.partitions=3
num.network.threads=2
num.io.threads=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are declared in contracts/asyncapi.yaml and created by make topics; Connect creates its own.
auto.create.topics.enable=false
log.retention.hours=168
log.segment.bytes=67108864
EOF
  local cp="$DIST/kafka/libs/*"
  if [ ! -f "$DATA/kafka/meta.properties" ]; then
    local cid
    cid=$("$(java_cmd)" -cp "$cp" -Dlog4j2.configurationFile="$CONF/log4j2.properties" kafka.tools.StorageTool random-uuid | tail -1)
    say "kafka: formatting KRaft storage (cluster $cid)"
    "$(java_cmd)" -cp "$cp" -Dlog4j2.configurationFile="$CONF/log4j2.properties" kafka.tools.StorageTool \
      format --standalone -t "$cid" -c "$CONF/kafka.properties" >"$LOGS/kafka-format.log" 2>&1 ||
      die "kafka storage format failed; see $LOGS/kafka-format.log"
  fi
  require_free_port kafka "$KAFKA_PORT"
  # shellcheck disable=SC2086
  spawn kafka "$(java_cmd)" $KAFKA_HEAP_OPTS $JVM_COMMON_OPTS -Dhashinsight.service=kafka \
    -Dlog4j2.configurationFile="$CONF/log4j2.properties" -cp "$cp" kafka.Kafka "$CONF/kafka.properties"
  wait_ready kafka "$KAFKA_START_TIMEOUT" kafka_ready
}

kafka_ready() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 2>/dev/null | grep -q 'broker 1 at'; }

# ---------------------------------------------------------------------------------------------- registry

start_registry() {
  local jar
  jar=$(registry_jar)
  [ -n "$jar" ] || die "registry: no Apicurio jar under $DIST/apicurio-registry; run: infra/stack.sh fetch"
  require_free_port registry "$REGISTRY_PORT"
  # Stored in PostgreSQL (database `registry`), so schema ids survive restarts just as Kafka's records do.
  # shellcheck disable=SC2086
  (cd "$(dirname "$jar")" && spawn registry "$(java_cmd)" $REGISTRY_HEAP_OPTS $JVM_COMMON_OPTS \
    -Dhashinsight.service=registry \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=postgresql \
    -Dapicurio.datasource.url="jdbc:postgresql://127.0.0.1:$PG_PORT/registry" \
    -Dapicurio.datasource.username=registry -Dapicurio.datasource.password=registry \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=10 \
    -Dapicurio.rest.deletion.artifact.enabled=true \
    -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -Dquarkus.log.console.level=INFO -Dquarkus.banner.enabled=false \
    -jar "$jar")
  wait_ready registry "$REGISTRY_START_TIMEOUT" curl -sf "http://127.0.0.1:$REGISTRY_PORT/apis/registry/v3/system/info"
}

# ---------------------------------------------------------------------------------------------- connect

start_connect() {
  mkdir -p "$CONF" "$DATA/connect"
  write_log4j
  cat >"$CONF/connect.properties" <<EOF
bootstrap.servers=127.0.0.1:$KAFKA_PORT
group.id=hashinsight-connect
config.storage.topic=_connect-configs
offset.storage.topic=_connect-offsets
status.storage.topic=_connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=5
status.storage.partitions=1
# Source offsets flushed often: after a crash fewer events are re-sent (consumers dedupe them anyway).
offset.flush.interval.ms=1000
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=$DIST/connect-plugins
connector.client.config.override.policy=All
scheduled.rebalance.max.delay.ms=0
EOF
  require_free_port connect "$CONNECT_PORT"
  # shellcheck disable=SC2086
  spawn connect "$(java_cmd)" $CONNECT_HEAP_OPTS $JVM_COMMON_OPTS -Dhashinsight.service=connect \
    -Dlog4j2.configurationFile="$CONF/log4j2.properties" -cp "$DIST/kafka/libs/*" \
    org.apache.kafka.connect.cli.ConnectDistributed "$CONF/connect.properties"
  wait_ready connect "$CONNECT_START_TIMEOUT" connect_ready
}

connect_ready() {
  curl -sf "http://127.0.0.1:$CONNECT_PORT/connector-plugins?connectorsOnly=true" | grep -q PostgresConnector
}

# ---------------------------------------------------------------------------------------------- application

venv_python() {
  [ -x "$ROOT/.venv/bin/python" ] || die "no .venv: run make venv"
  echo "$ROOT/.venv/bin/python"
}

start_web() {
  require_free_port web "$WEB_PORT"
  (cd "$ROOT" && spawn web env HASHINSIGHT_SERVICE=web "$(venv_python)" -m app.entrypoints.serve \
    --host 127.0.0.1 --port "$WEB_PORT")
  wait_ready web 60 curl -sf "http://127.0.0.1:$WEB_PORT/api/health"
}

start_worker() {
  local svc=$1 module=$2
  (cd "$ROOT" && spawn "$svc" "$(venv_python)" -m "$module")
  sleep 1
  alive "$svc" || { tail -25 "$LOGS/$svc.log" >&2; die "$svc exited during start-up; see $LOGS/$svc.log"; }
  say "$svc running"
}

# ---------------------------------------------------------------------------------------------- commands

start() {
  local svc=$1
  if alive "$svc"; then
    say "$svc already running (pid $(cat "$(pidfile "$svc")"))"
    return 0
  fi
  case $svc in
    postgres) start_postgres ;;
    redis) start_redis ;;
    kafka) start_kafka ;;
    registry) start_registry ;;
    connect) start_connect ;;
    web) start_web ;;
    worker-portfolio) start_worker "$svc" workers.portfolio_consumer ;;
    worker-intel) start_worker "$svc" workers.intel_consumer ;;
    *) die "unknown service '$svc' (known: ${STACK_SERVICES[*]} ${APP_SERVICES[*]})" ;;
  esac
}

cmd_up() {
  mkdir -p "$RUN" "$LOGS" "$DATA"
  local services=("$@")
  [ ${#services[@]} -gt 0 ] || services=("${STACK_SERVICES[@]}")
  local needs_jvm=0 s
  for s in "${services[@]}"; do case $s in kafka|registry|connect) needs_jvm=1 ;; esac; done
  ensure_packages
  [ $needs_jvm -eq 0 ] || fetch
  local t0=$SECONDS
  for s in "${services[@]}"; do start "$s"; done
  say "up in $((SECONDS - t0)) s: ${services[*]}"
}

cmd_stop() {
  local s
  for s in "$@"; do stop_service "$s"; done
}

cmd_down() {
  local all=("${STACK_SERVICES[@]}" "${APP_SERVICES[@]}") i
  for (( i=${#all[@]}-1; i>=0; i-- )); do stop_service "${all[$i]}"; done
}

cmd_purge() {
  cmd_down
  local pgroot
  pgroot=$(dirname "$(pg_data_dir)")
  case $pgroot in /var/tmp/hashinsight-*) rm -rf "$pgroot" ;; esac
  rm -rf "$DATA" "$RUN" "$LOGS" "$CONF"
  say "data removed from $STACK_HOME (downloads in $DIST kept)"
}

service_port() {
  case $1 in
    postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;; kafka) echo "$KAFKA_PORT" ;;
    registry) echo "$REGISTRY_PORT" ;; connect) echo "$CONNECT_PORT" ;; web) echo "$WEB_PORT" ;; *) echo - ;;
  esac
}

cmd_status() {
  local s rc=0
  printf '%-18s %-8s %-8s %-7s %s\n' SERVICE STATE PID PORT LOG
  for s in "${STACK_SERVICES[@]}" "${APP_SERVICES[@]}"; do
    local state=stopped pid=-
    if alive "$s"; then state=running; pid=$(cat "$(pidfile "$s")"); fi
    printf '%-18s %-8s %-8s %-7s %s\n' "$s" "$state" "$pid" "$(service_port "$s")" "$LOGS/$s.log"
  done
  for s in "${STACK_SERVICES[@]}"; do alive "$s" || rc=3; done
  return $rc
}

cmd_logs() {
  if [ $# -gt 0 ]; then tail -n 100 -F "$LOGS/$1.log"; else tail -n 20 -F "$LOGS"/*.log; fi
}

cmd_urls() {
  cat <<EOF
HashInsight is up.
  Analytics page   http://127.0.0.1:$WEB_PORT/analytics/main   (sign in at /analytics/login)
  API              http://127.0.0.1:$WEB_PORT/api/  (Swagger UI /api/ui/, spec /api/openapi.json, health /api/health)
  PostgreSQL       postgresql://127.0.0.1:$PG_PORT/hashinsight
  Redis            redis://127.0.0.1:$REDIS_PORT/0
  Kafka            127.0.0.1:$KAFKA_PORT
  Schema registry  http://127.0.0.1:$REGISTRY_PORT/apis/registry/v3  (Confluent API /apis/ccompat/v7)
  Kafka Connect    http://127.0.0.1:$CONNECT_PORT/connectors
  Logs             $LOGS/
EOF
}

main() {
  local cmd=${1:-status}
  [ $# -gt 0 ] && shift
  case $cmd in
    fetch) fetch ;;
    up) cmd_up "$@" ;;
    stop) [ $# -gt 0 ] || die "stop needs service names"; cmd_stop "$@" ;;
    down) cmd_down ;;
    purge) cmd_purge ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    urls) cmd_urls ;;
    -h|--help|help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd'; see infra/stack.sh help" ;;
  esac
}

main "$@"
