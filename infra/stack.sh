#!/usr/bin/env bash
# The native stack for machines without Docker: installs, initialises and starts every service, and hands the
# processes to supervisord, which restarts any that dies (with backoff) until it is stopped on purpose.
#
#   infra/stack.sh fetch                 gather Kafka, Connect, Debezium and Apicurio from Maven Central
#   infra/stack.sh up [service...]       start services in order and wait until each is ready (idempotent)
#   infra/stack.sh stop service...       stop the named services (supervisord no longer restarts them)
#   infra/stack.sh restart service...    stop, then start and wait until ready
#   infra/stack.sh scale worker-X N      run N instances of a worker group (1..WORKER_SLOTS)
#   infra/stack.sh pid service           the PID of a running service (of each instance, for a worker group)
#   infra/stack.sh down                  stop everything, then supervisord itself
#   infra/stack.sh purge                 down, then delete all data (databases, topics, logs); keeps downloads
#   infra/stack.sh status                one line per process
#   infra/stack.sh logs [service]        tail the logs
#   infra/stack.sh urls                  print the endpoints
#
# Services, in start order: postgres redis kafka registry connect connect-watchdog (the stack), then web
# worker-portfolio worker-intel (the application, started only when named). KAFKA_NODES=3 runs Kafka as a
# three-node KRaft cluster (kafka-1..3). Every process is a supervisord program of this checkout
# ($STACK_HOME/conf/supervisord.conf, socket $STACK_HOME/run/supervisor.sock); this script keeps the install,
# the one-time initialisation (initdb, KRaft format, databases) and the waiting for readiness.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_HOME=${STACK_HOME:-$ROOT/.stack}
DIST=${STACK_DIST:-$STACK_HOME/dist}
DATA=$STACK_HOME/data
RUN=$STACK_HOME/run
LOGS=$STACK_HOME/logs
CONF=$STACK_HOME/conf
VENV=$ROOT/.venv
# shellcheck source=infra/stack.env
source "$ROOT/infra/stack.env"

PG_VERSION=15
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
PG_PRELOAD=pg_stat_statements,pg_cron  # shared_preload_libraries; a running cluster with others is restarted
PG_OS_USER=postgres
APP_SERVICES=(web worker-portfolio worker-intel)
WORKER_GROUPS=(worker-portfolio worker-intel)

say() { printf '%s %s\n' "[stack]" "$*"; }
die() { printf '%s %s\n' "[stack] ERROR:" "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
is_root() { [ "$(id -u)" -eq 0 ]; }

case $KAFKA_NODES in 1|3) ;; *) die "KAFKA_NODES must be 1 or 3 (got $KAFKA_NODES)" ;; esac

# Program names of the Kafka nodes: `kafka` alone, or kafka-1..3 in a cluster.
kafka_nodes() {
  if [ "$KAFKA_NODES" -eq 1 ]; then echo kafka; else echo kafka-1 kafka-2 kafka-3; fi
}
node_index() { case $1 in kafka) echo 1 ;; kafka-*) echo "${1#kafka-}" ;; esac; }
node_port() { echo $((KAFKA_PORT + 100 * ($(node_index "$1") - 1))); }
node_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 100 * ($(node_index "$1") - 1))); }
bootstrap_servers() {
  local n out=()
  for n in $(kafka_nodes); do out+=("127.0.0.1:$(node_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

# shellcheck disable=SC2046
STACK_SERVICES=(postgres redis $(kafka_nodes) registry connect connect-watchdog)

# PostgreSQL refuses to run as root, and a fresh clone may sit below a directory the postgres user cannot
# enter (mktemp -d is 0700), so as root the cluster lives in a per-checkout directory under /var/tmp.
pg_data_dir() {
  if is_root; then
    echo "/var/tmp/hashinsight-$(printf '%s' "$STACK_HOME" | sha1sum | cut -c1-10)/pgdata"
  else
    echo "$DATA/postgres"
  fi
}
pg_run() { if is_root; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

# ---------------------------------------------------------------------------------------------- install

ensure_packages() {
  local missing=()
  [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-$PG_VERSION)
  command -v psql >/dev/null || missing+=(postgresql-client-$PG_VERSION)
  # Daily partitions made ahead and dropped past retention (pg_partman), run with the purges by pg_cron.
  [ -f "/usr/share/postgresql/$PG_VERSION/extension/pg_partman.control" ] || missing+=(postgresql-$PG_VERSION-partman)
  [ -f "/usr/share/postgresql/$PG_VERSION/extension/pg_cron.control" ] || missing+=(postgresql-$PG_VERSION-cron)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v kcat >/dev/null || missing+=(kcat)
  command -v mvn >/dev/null || missing+=(maven)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v curl >/dev/null || missing+=(curl)
  # Lints docker-compose.yml in the tests on machines without the compose plugin.
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  # The browser test drives Debian's Chromium; `make generate` runs the AsyncAPI generator on Node.js.
  command -v chromium >/dev/null || missing+=(chromium)
  command -v npm >/dev/null || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing from Debian: ${missing[*]}"
    mkdir -p "$LOGS"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The packages' own PostgreSQL cluster and Redis service, if apt starts them, are not used: ours run on other ports.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install failed; see $LOGS/apt.log"; }
  fi
  ensure_pg_user
  [ -x "$VENV/bin/supervisord" ] || die "no supervisord in $VENV: run make venv (supervisor is a project dependency)"
}

# As root the cluster runs as this user; an image may carry the server binaries without the package's user.
ensure_pg_user() {
  is_root || return 0
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
  for s in $(kafka_nodes) registry connect; do
    running "$s" && die "the JVM pieces changed (infra/*.pom); stop the stack first: make stack-down"
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

# ---------------------------------------------------------------------------------------------- ports

service_port() {
  case $1 in
    postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;; kafka|kafka-*) node_port "$1" ;;
    registry) echo "$REGISTRY_PORT" ;; connect) echo "$CONNECT_PORT" ;; web) echo "$WEB_PORT" ;; *) echo - ;;
  esac
}

# Every port a service listens on (Kafka nodes also have a controller port).
service_ports() {
  case $1 in
    kafka|kafka-*) echo "$(node_port "$1") $(node_controller_port "$1")" ;;
    worker-*) local i; for i in $(seq 1 "$WORKER_SLOTS"); do echo -n "$((WORKER_METRICS_PORT + $(worker_slot_base "$1") + i)) "; done ;;
    *) local p; p=$(service_port "$1"); [ "$p" = - ] || echo "$p" ;;
  esac
}

# Metrics ports: worker-portfolio instance n on WORKER_METRICS_PORT + n, worker-intel on + 10 + n.
worker_slot_base() { case $1 in worker-portfolio) echo 0 ;; worker-intel) echo 10 ;; esac; }

# A listening port inside the ephemeral range can be stolen by a retrying client's own source port (see
# infra/stack.env), so such a configuration is refused unless the port is reserved (ip_local_reserved_ports).
in_ranges() {
  local port=$1 list=$2 part lo hi
  IFS=, read -ra parts <<<"$list"
  for part in "${parts[@]}"; do
    [ -n "$part" ] || continue
    lo=${part%-*}; hi=${part#*-}
    if (( port >= lo && port <= hi )); then return 0; fi
  done
  return 1
}

check_port_ranges() {
  local range=/proc/sys/net/ipv4/ip_local_port_range reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
  [ -r "$range" ] || return 0
  local lo hi res="" svc port bad=()
  read -r lo hi <"$range"
  [ -r "$reserved" ] && res=$(tr -d ' \n' <"$reserved")
  for svc in "$@"; do
    for port in $(service_ports "$svc"); do
      if (( port >= lo && port <= hi )) && ! in_ranges "$port" "$res"; then
        bad+=("$svc:$port")
      fi
    done
  done
  if [ ${#bad[@]} -gt 0 ]; then
    die "port(s) ${bad[*]} lie inside this machine's ephemeral port range $lo-$hi (ip_local_port_range): a \
retrying client can take such a port as its own source port and lock the service out after a restart. Choose \
ports below $lo in infra/stack.env (or the environment), or reserve them in net.ipv4.ip_local_reserved_ports."
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_ports() {
  local svc=$1 port
  for port in $(service_ports "$svc"); do
    if port_open "$port"; then
      die "$svc: port $port on 127.0.0.1 is taken by a process this stack did not start; stop it or set the port in infra/stack.env"
    fi
  done
}

# ---------------------------------------------------------------------------------------------- supervisord

SUPERVISOR_CONF=$CONF/supervisord.conf
ctl() { "$VENV/bin/supervisorctl" -c "$SUPERVISOR_CONF" "$@"; }

supervisord_up() { [ -S "$RUN/supervisor.sock" ] && ctl pid >/dev/null 2>&1; }

# A supervisord value: '%' is its expansion character.
sv_escape() { printf '%s' "${1//%/%%}"; }

# The application's settings, passed to web and workers explicitly, so a later `up` with other values (e.g.
# RATE_LIMIT_ENABLED=0 for a benchmark) reaches them: supervisord restarts a program whose config changed.
APP_ENV_VARS=(ADMIN_DATABASE_URL DATABASE_URL WORKER_DATABASE_URL REDIS_URL KAFKA_BROKERS CONNECT_URL
  SCHEMA_REGISTRY_URL REGISTRY_NATIVE_URL JWT_SECRET JWT_KEYS JWT_ACTIVE_KID
  IDEMPOTENCY_RETENTION_HOURS RATE_LIMIT_ENABLED LOG_LEVEL WEB_WORKERS
  API_STATEMENT_TIMEOUT_MS API_LOCK_TIMEOUT_MS WORKER_STATEMENT_TIMEOUT_MS WORKER_LOCK_TIMEOUT_MS SHED_WRITES_LAG_MS)

app_environment() {
  local pairs=() name
  pairs+=("PG_PORT=\"$PG_PORT\"" "REDIS_PORT=\"$REDIS_PORT\"" "KAFKA_PORT=\"$KAFKA_PORT\"")
  pairs+=("REGISTRY_PORT=\"$REGISTRY_PORT\"" "CONNECT_PORT=\"$CONNECT_PORT\"" "WEB_PORT=\"$WEB_PORT\"")
  pairs+=("PYTHONUNBUFFERED=\"1\"")
  [ -n "${KAFKA_BROKERS:-}" ] || pairs+=("KAFKA_BROKERS=\"$(bootstrap_servers)\"")
  for name in "${APP_ENV_VARS[@]}" $(compgen -e | grep -E '^(HASHINSIGHT_|OTEL_)' || true); do
    [ -n "${!name:-}" ] || continue
    local value=${!name}
    value=${value//\\/\\\\}; value=${value//\"/\\\"}
    pairs+=("$name=\"$(sv_escape "$value")\"")
  done
  (IFS=,; echo "${pairs[*]}")
}

# Kafka keeps a file open per log segment: as many descriptors as the hard limit allows, up to 65536.
max_fds() {
  local hard
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || (( hard > 65536 )); then echo 65536; else echo "$hard"; fi
}

java_cmd() { echo "${JAVA_HOME:+$JAVA_HOME/bin/}java"; }

# One [program:x] section. autorestart with startretries: a process that dies is started again at once; one
# that dies during its first `startsecs` is retried after 1 s, 2 s, 3 s, ... (supervisord's backoff).
program() {
  local name=$1 command=$2 startsecs=$3 stopsignal=$4 extra=${5:-} logfile=${6:-$LOGS/$1.log}
  cat <<EOF

[program:$name]
command=$command
autostart=false
autorestart=true
startsecs=$startsecs
startretries=100000
stopsignal=$stopsignal
stopwaitsecs=60
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$logfile
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=2
$extra
EOF
}

write_supervisor_conf() {
  mkdir -p "$CONF" "$RUN" "$LOGS"
  local tmp py jar pgdata node env
  tmp=$(mktemp "$CONF/.supervisord.XXXXXX")
  py=$VENV/bin/python
  jar=$(registry_jar)
  pgdata=$(pg_data_dir)
  env=$(app_environment)
  {
    cat <<EOF
; Generated by infra/stack.sh on every \`up\`: edit the script, not this file.
[unix_http_server]
file=$RUN/supervisor.sock
chmod=0700

[supervisord]
logfile=$LOGS/supervisord.log
logfile_maxbytes=20MB
logfile_backups=2
pidfile=$RUN/supervisord.pid
childlogdir=$LOGS
minfds=$(max_fds)
identifier=hashinsight:$STACK_HOME

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$RUN/supervisor.sock
EOF
    # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every client to disconnect).
    program postgres "$PG_BIN/postgres -D $pgdata" 2 INT "$(is_root && echo "user=$PG_OS_USER")"
    # Cache, locks and rate-limit counters only: nothing in Redis needs to survive a restart.
    program redis "$(command -v redis-server) --bind 127.0.0.1 --port $REDIS_PORT --dir $DATA/redis --save '' \
--appendonly no --maxmemory 256mb --maxmemory-policy volatile-lru --daemonize no" 1 TERM
    for node in $(kafka_nodes); do
      program "$node" "$(java_cmd) $KAFKA_HEAP_OPTS $JVM_COMMON_OPTS -Dhashinsight.service=$node \
-Dlog4j2.configurationFile=$CONF/log4j2.properties -cp $DIST/kafka/libs/* kafka.Kafka $CONF/$node.properties" 2 TERM
    done
    # Stored in PostgreSQL (database `registry`), so schema ids survive restarts just as Kafka's records do.
    # Connections are validated on borrow: after a PostgreSQL restart the pool drops dead connections instead of
    # answering 500 until each one has failed once.
    program registry "$(java_cmd) $REGISTRY_HEAP_OPTS $JVM_COMMON_OPTS -Dhashinsight.service=registry \
-Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port=$REGISTRY_PORT \
-Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=postgresql \
-Dapicurio.datasource.url=jdbc:postgresql://127.0.0.1:$PG_PORT/registry \
-Dapicurio.datasource.username=registry -Dapicurio.datasource.password=registry \
-Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 -Dapicurio.datasource.jdbc.max-size=10 \
-Dquarkus.datasource.postgresql.jdbc.validate-on-borrow=true \
-Dquarkus.datasource.postgresql.jdbc.validation-query-sql=SELECT\\ 1 \
-Dquarkus.datasource.postgresql.jdbc.background-validation-interval=5S \
-Dquarkus.datasource.postgresql.jdbc.acquisition-timeout=10S \
-Dapicurio.rest.deletion.artifact.enabled=true -Dapicurio.rest.deletion.artifact-version.enabled=true \
-Dquarkus.log.console.level=INFO -Dquarkus.banner.enabled=false -jar $jar" 2 TERM \
      "directory=$(dirname "${jar:-$DIST/x}")"
    program connect "$(java_cmd) $CONNECT_HEAP_OPTS $JVM_COMMON_OPTS -Dhashinsight.service=connect \
-Dlog4j2.configurationFile=$CONF/log4j2.properties -cp $DIST/kafka/libs/* \
org.apache.kafka.connect.cli.ConnectDistributed $CONF/connect.properties" 2 TERM
    program connect-watchdog "$py -m app.entrypoints.connector_watchdog" 2 TERM \
      "directory=$ROOT
environment=$env"
    program web "$py -m app.entrypoints.serve --host 127.0.0.1 --port $WEB_PORT" 2 TERM \
      "directory=$ROOT
environment=HASHINSIGHT_SERVICE=\"web\",$env"
    local group module
    for group in "${WORKER_GROUPS[@]}"; do
      case $group in
        worker-portfolio) module=workers.portfolio_consumer ;;
        worker-intel) module=workers.intel_consumer ;;
      esac
      program "$group" "$py -m $module" 2 TERM \
        "numprocs=$WORKER_SLOTS
numprocs_start=1
process_name=%(program_name)s-%(process_num)d
directory=$ROOT
environment=HASHINSIGHT_SERVICE=\"%(program_name)s-%(process_num)d\",\
HASHINSIGHT_METRICS_PORT=\"$((WORKER_METRICS_PORT + $(worker_slot_base "$group")))\",\
HASHINSIGHT_WORKER_SLOT=\"%(process_num)d\",$env" "$LOGS/%(program_name)s-%(process_num)d.log"
    done
  } >"$tmp"
  chmod 600 "$tmp"
  if [ -f "$SUPERVISOR_CONF" ] && cmp -s "$tmp" "$SUPERVISOR_CONF"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$SUPERVISOR_CONF"
  return 0
}

ensure_supervisord() {
  local changed=0
  write_supervisor_conf && changed=1
  if ! supervisord_up; then
    # One that lost its socket still holds every port: stop it first, or nothing new could start. (Not one
    # that is only starting up: a socket file, or less than 10 s of age, says so.)
    local lost
    lost=$(own_supervisord_pid)
    if [ -n "$lost" ] && [ ! -S "$RUN/supervisor.sock" ] && (( $(ps -o etimes= -p "$lost" 2>/dev/null || echo 0) > 10 ))
    then
      cmd_down
    fi
    rm -f "$RUN/supervisor.sock"
    "$VENV/bin/supervisord" -c "$SUPERVISOR_CONF" || die "supervisord did not start; see $LOGS/supervisord.log"
    local i
    for i in $(seq 1 50); do supervisord_up && return 0; sleep 0.2; done
    die "supervisord did not answer on $RUN/supervisor.sock; see $LOGS/supervisord.log"
  elif [ $changed -eq 1 ]; then
    # `update` stops and re-adds every program whose command or environment changed (an `up` from a shell
    # with other HASHINSIGHT_* variables changes them all). Start again those that were running, so one
    # command never leaves another service, the connect-watchdog say, down; `up` starts the ones it names.
    local was name
    was=$(ctl status 2>/dev/null | awk '$2 == "RUNNING" { print $1 }' || true)
    ctl reread >/dev/null && ctl update >/dev/null
    forget_status
    for name in $was; do
      [ "$(sv_state_of "$name")" = RUNNING ] || ctl start "$name" >/dev/null 2>&1 || true
    done
    forget_status
  fi
}

# supervisord's name of a service's (first) process.
sv_name() {
  case $1 in
    worker-*-[0-9]*) echo "${1%-*}:$1" ;;
    worker-*) echo "$1:$1-1" ;;
    *) echo "$1" ;;
  esac
}

# `supervisorctl status` costs a Python start-up (~0.3 s): read it once, and again only after a change.
STATUS_CACHE=""
refresh_status() { STATUS_CACHE=$(ctl status 2>/dev/null || true); }
forget_status() { STATUS_CACHE=""; }

sv_state() {
  [ -S "$RUN/supervisor.sock" ] || { echo STOPPED; return 0; }
  sv_state_of "$(sv_name "$1")"
}

# The state of a program by supervisord's own name (group:name for workers).
sv_state_of() {
  [ -n "$STATUS_CACHE" ] || refresh_status
  local line
  line=$(awk -v n="$1" '$1 == n { print; exit }' <<<"$STATUS_CACHE")
  set -- $line
  echo "${2:-STOPPED}"
}

running() { [ "$(sv_state "$1")" = RUNNING ]; }

sv_pid() {
  [ -S "$RUN/supervisor.sock" ] || return 0
  [ -n "$STATUS_CACHE" ] || refresh_status
  local line
  line=$(awk -v n="$(sv_name "$1")" '$1 == n && $2 == "RUNNING" { print; exit }' <<<"$STATUS_CACHE")
  [[ $line =~ pid\ ([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
  return 0
}

# wait_ready SERVICE TIMEOUT CHECK-COMMAND...: poll until the check passes; give up when the process fails
# during start-up (supervisord would retry it forever) or when time runs out, and stop it then.
wait_ready() {
  local svc=$1 timeout=$2; shift 2
  local t0=$SECONDS state log
  log=$LOGS/$svc.log
  while :; do
    refresh_status
    if awk -v n="$(sv_name "$svc")" '$1 == n { found = 1 } END { exit !found }' <<<"$STATUS_CACHE"; then
      state=$(sv_state "$svc")
    else
      state=UNKNOWN  # supervisord did not answer this time (a status read can fail while it is busy): ask again
    fi
    if [ "$state" = RUNNING ] && "$@" >/dev/null 2>&1; then break; fi
    if [[ $state =~ ^(BACKOFF|FATAL|EXITED|STOPPED)$ ]]; then
      ctl stop "$(sv_name "$svc")" >/dev/null 2>&1 || true
      tail -25 "$log" >&2 || true
      die "$svc exited during start-up ($state); see $log"
    fi
    if (( SECONDS - t0 >= timeout )); then
      ctl stop "$(sv_name "$svc")" >/dev/null 2>&1 || true
      tail -25 "$log" >&2 || true
      die "$svc not ready after ${timeout}s; see $log"
    fi
    sleep 0.5
  done
  say "$svc ready in $((SECONDS - t0)) s"
}

sv_start() {
  local out
  forget_status
  out=$(ctl start "$(sv_name "$1")" 2>&1) || {
    case $out in *"already started"*) return 0 ;; esac
    # A start that fails quickly is reported by wait_ready with the log; anything else is fatal here.
    case $out in *"spawn error"*|*"abnormal termination"*|*"Exited too quickly"*) return 0 ;; esac
    die "supervisord could not start $1: $out"
  }
}

stop_service() {
  local svc=$1
  supervisord_up || return 0
  if [[ " ${WORKER_GROUPS[*]} " == *" $svc "* ]]; then
    ctl stop "$svc:*" >/dev/null 2>&1 || true
    say "$svc stopped"
    return 0
  fi
  [ "$svc" = kafka ] && [ "$KAFKA_NODES" -gt 1 ] && { local n; for n in $(kafka_nodes); do stop_service "$n"; done; return 0; }
  case $(sv_state "$svc") in STOPPED|EXITED|FATAL) return 0 ;; esac
  ctl stop "$(sv_name "$svc")" >/dev/null 2>&1 || true
  forget_status
  say "$svc stopped"
}

# ---------------------------------------------------------------------------------------------- postgres

psql_admin() {
  PGPASSWORD=postgres psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

init_postgres() {
  local pgdata
  pgdata=$(pg_data_dir)
  if [ ! -s "$pgdata/PG_VERSION" ]; then
    say "postgres: initialising a cluster in $pgdata"
    mkdir -p "$pgdata"
    if is_root; then
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
shared_preload_libraries = '$PG_PRELOAD'
# pg_cron runs the partition maintenance and the purges (migrations/0030) in the application's database, in
# background workers (no connection, so no password, needed).
cron.database_name = 'hashinsight'
cron.use_background_workers = on
cron.max_running_jobs = 4
max_worker_processes = 16
pg_stat_statements.track = top
pg_stat_statements.track_planning = on
EOF
  grep -q "include_if_exists = 'hashinsight.conf'" "$pgdata/postgresql.conf" ||
    echo "include_if_exists = 'hashinsight.conf'" | pg_run tee -a "$pgdata/postgresql.conf" >/dev/null
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

start_postgres() {
  init_postgres
  mkdir -p "$DATA/redis"
  require_free_ports postgres
  sv_start postgres
  wait_ready postgres "$PG_START_TIMEOUT" pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
  bootstrap_postgres
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

kafka_voters() {
  local n out=()
  for n in $(kafka_nodes); do out+=("$(node_index "$n")@127.0.0.1:$(node_controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

init_kafka_node() {
  local node=$1 id port cport rf quorum dir
  id=$(node_index "$node"); port=$(node_port "$node"); cport=$(node_controller_port "$node")
  dir=$DATA/$node
  mkdir -p "$dir" "$CONF"
  write_log4j
  if [ "$KAFKA_NODES" -eq 1 ]; then
    rf=1
    quorum="controller.quorum.bootstrap.servers=127.0.0.1:$cport"
  else
    rf=3
    quorum="controller.quorum.voters=$(kafka_voters)"
  fi
  cat >"$CONF/$node.properties" <<EOF
process.roles=broker,controller
node.id=$id
$quorum
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir
num.partitions=3
num.network.threads=2
num.io.threads=4
default.replication.factor=$rf
min.insync.replicas=$(( rf > 1 ? 2 : 1 ))
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$(( rf > 1 ? 2 : 1 ))
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$(( rf > 1 ? 2 : 1 ))
group.initial.rebalance.delay.ms=0
# Topics are declared in contracts/asyncapi.yaml and created by make topics; Connect creates its own.
auto.create.topics.enable=false
log.retention.hours=168
log.segment.bytes=67108864
EOF
  if [ ! -f "$dir/meta.properties" ]; then
    local cp="$DIST/kafka/libs/*" cid
    if [ -s "$DATA/kafka-cluster-id" ]; then
      cid=$(cat "$DATA/kafka-cluster-id")
    else
      cid=$("$(java_cmd)" -cp "$cp" -Dlog4j2.configurationFile="$CONF/log4j2.properties" kafka.tools.StorageTool random-uuid | tail -1)
      echo "$cid" >"$DATA/kafka-cluster-id"
    fi
    say "$node: formatting KRaft storage (cluster $cid)"
    local standalone=()
    [ "$KAFKA_NODES" -eq 1 ] && standalone=(--standalone)
    "$(java_cmd)" -cp "$cp" -Dlog4j2.configurationFile="$CONF/log4j2.properties" kafka.tools.StorageTool \
      format "${standalone[@]}" -t "$cid" -c "$CONF/$node.properties" >"$LOGS/$node-format.log" 2>&1 ||
      die "$node storage format failed; see $LOGS/$node-format.log"
  fi
}

start_kafka_node() {
  local node=$1
  init_kafka_node "$node"
  require_free_ports "$node"
  sv_start "$node"
}

# A cluster's nodes must start together (a lone controller waits for a quorum), then each is waited for.
start_kafka() {
  local node
  for node in "$@"; do start_kafka_node "$node"; done
  for node in "$@"; do wait_ready "$node" "$KAFKA_START_TIMEOUT" kafka_ready "$node"; done
}

kafka_ready() {
  local id port
  id=$(node_index "$1"); port=$(node_port "$1")
  kcat -b "127.0.0.1:$port" -L -m 3 2>/dev/null | grep -q "broker $id at"
}

# ---------------------------------------------------------------------------------------------- registry, connect

start_registry() {
  [ -n "$(registry_jar)" ] || die "registry: no Apicurio jar under $DIST/apicurio-registry; run: infra/stack.sh fetch"
  require_free_ports registry
  sv_start registry
  wait_ready registry "$REGISTRY_START_TIMEOUT" curl -sf "http://127.0.0.1:$REGISTRY_PORT/apis/registry/v3/system/info"
}

write_connect_conf() {
  mkdir -p "$CONF" "$DATA/connect"
  write_log4j
  local rf=1
  [ "$KAFKA_NODES" -gt 1 ] && rf=3
  cat >"$CONF/connect.properties" <<EOF
bootstrap.servers=$(bootstrap_servers)
group.id=hashinsight-connect
config.storage.topic=_connect-configs
offset.storage.topic=_connect-offsets
status.storage.topic=_connect-status
config.storage.replication.factor=$rf
offset.storage.replication.factor=$rf
status.storage.replication.factor=$rf
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
# Every plugin here ships ServiceLoader manifests: skip the reflective scan of the plugin path, which took
# 20-80 s of every start on this machine (Connect itself suggests it in its log).
plugin.discovery=service_load
EOF
}

start_connect() {
  write_connect_conf
  require_free_ports connect
  sv_start connect
  wait_ready connect "$CONNECT_START_TIMEOUT" connect_ready
}

connect_ready() {
  curl -sf "http://127.0.0.1:$CONNECT_PORT/connector-plugins?connectorsOnly=true" | grep -q PostgresConnector
}

# ---------------------------------------------------------------------------------------------- application

start_web() {
  require_free_ports web
  sv_start web
  wait_ready web "$APP_START_TIMEOUT" curl -sf "http://127.0.0.1:$WEB_PORT/api/health"
}

# Up to its first `startsecs` a process counts as STARTING; RUNNING after that means it stayed up.
start_process() {
  sv_start "$1"
  wait_ready "$1" "$APP_START_TIMEOUT" true
}

start_worker_group() {
  local group=$1 wanted=${2:-1} i
  (( wanted >= 1 && wanted <= WORKER_SLOTS )) || die "$group: between 1 and $WORKER_SLOTS instances (WORKER_SLOTS)"
  for i in $(seq 1 "$wanted"); do
    running "$group-$i" && { say "$group-$i already running (pid $(sv_pid "$group-$i"))"; continue; }
    start_process "$group-$i"
  done
}

cmd_scale() {
  local group=${1:-} n=${2:-}
  [[ " ${WORKER_GROUPS[*]} " == *" $group "* ]] || die "scale takes a worker group: ${WORKER_GROUPS[*]}"
  [[ $n =~ ^[0-9]+$ ]] && (( n >= 1 && n <= WORKER_SLOTS )) || die "scale $group N: N from 1 to $WORKER_SLOTS"
  ensure_packages
  ensure_supervisord
  start_worker_group "$group" "$n"
  local i
  for i in $(seq $((n + 1)) "$WORKER_SLOTS"); do
    if running "$group-$i"; then ctl stop "$(sv_name "$group-$i")" >/dev/null; say "$group-$i stopped"; fi
  done
}

# ---------------------------------------------------------------------------------------------- commands

# A cluster started before a library was added to shared_preload_libraries only loads it on a restart.
postgres_preload_stale() {
  local loaded
  loaded=$(psql_admin -d postgres -tAc "SHOW shared_preload_libraries" 2>/dev/null | tr -d ' ') || return 1
  [ -n "$loaded" ] && [ "$loaded" != "$PG_PRELOAD" ]
}

start() {
  local svc=$1
  if [ "$svc" = postgres ] && running postgres && postgres_preload_stale; then
    say "postgres: restarting to load $PG_PRELOAD"
    init_postgres
    stop_service postgres
  fi
  if running "$svc"; then
    say "$svc already running (pid $(sv_pid "$svc"))"
    return 0
  fi
  case $svc in
    postgres) start_postgres ;;
    redis) mkdir -p "$DATA/redis"; require_free_ports redis; sv_start redis
      wait_ready redis "$REDIS_START_TIMEOUT" sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG" ;;
    kafka|kafka-*) start_kafka "$svc" ;;
    registry) start_registry ;;
    connect) start_connect ;;
    connect-watchdog) start_process connect-watchdog ;;
    web) start_web ;;
    worker-portfolio|worker-intel) start_worker_group "$svc" 1 ;;
    *) die "unknown service '$svc' (known: ${STACK_SERVICES[*]} ${APP_SERVICES[*]})" ;;
  esac
}

# `kafka` names every node of the stack's Kafka.
expand_services() {
  local s
  for s in "$@"; do
    if [ "$s" = kafka ] && [ "$KAFKA_NODES" -gt 1 ]; then kafka_nodes; else echo "$s"; fi
  done
}

cmd_up() {
  mkdir -p "$RUN" "$LOGS" "$DATA"
  local services=()
  if [ $# -gt 0 ]; then
    mapfile -t services < <(expand_services "$@")
  else
    services=("${STACK_SERVICES[@]}")
  fi
  check_port_ranges "${services[@]}"
  local needs_jvm=0 s
  for s in "${services[@]}"; do case $s in kafka*|registry|connect) needs_jvm=1 ;; esac; done
  ensure_packages
  [ $needs_jvm -eq 0 ] || fetch
  write_connect_conf
  ensure_supervisord
  local t0=$SECONDS pending=()
  for s in "${services[@]}"; do
    case $s in
      kafka|kafka-*) running "$s" && say "$s already running (pid $(sv_pid "$s"))" || pending+=("$s") ;;
      *) [ ${#pending[@]} -eq 0 ] || { start_kafka "${pending[@]}"; pending=(); }; start "$s" ;;
    esac
  done
  [ ${#pending[@]} -eq 0 ] || start_kafka "${pending[@]}"
  say "up in $((SECONDS - t0)) s: ${services[*]}"
}

cmd_stop() {
  local s
  for s in "$@"; do stop_service "$s"; done
}

cmd_restart() {
  cmd_stop "$@"
  cmd_up "$@"
}

# The supervisord of this stack by its pid file, when that process is alive and runs this stack's configuration.
own_supervisord_pid() {
  local pid
  pid=$(cat "$RUN/supervisord.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SUPERVISOR_CONF" && echo "$pid"
  return 0
}

# Wait for a process to exit, at most 90 s: longer than supervisord gives a program to stop (stopwaitsecs=60)
# before it kills it. Fails when the process is still there.
wait_exit() {
  local i
  for i in $(seq 1 450); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  return 1
}

cmd_down() {
  local pid all=("${STACK_SERVICES[@]}" "${APP_SERVICES[@]}") i
  pid=$(own_supervisord_pid)
  if ! supervisord_up; then
    if [ -z "$pid" ]; then say "nothing running"; return 0; fi
    # Its socket is gone (removed by hand, or by an earlier supervisord's exit): it still runs every program.
    # SIGTERM makes it stop them all and exit, as `shutdown` would.
    say "supervisord (pid $pid) answers no socket: stopping it by signal"
    kill -TERM "$pid" 2>/dev/null || true
  else
    for (( i=${#all[@]}-1; i>=0; i-- )); do stop_service "${all[$i]}"; done
    ctl shutdown >/dev/null 2>&1 || true
  fi
  # Wait for the process, not for its socket to go quiet: it stops answering before its programs have exited,
  # and a supervisord started meanwhile (`make stack-down dev`) would lose its socket when this one removes it.
  if [ -n "$pid" ] && ! wait_exit "$pid"; then
    say "supervisord (pid $pid) is still stopping its programs after 90 s; the next down or up waits for it again"
    return 0
  fi
  rm -f "$RUN/supervisor.sock"
  say "supervisord stopped"
}

cmd_purge() {
  cmd_down
  local pgroot
  pgroot=$(dirname "$(pg_data_dir)")
  case $pgroot in /var/tmp/hashinsight-*) rm -rf "$pgroot" ;; esac
  rm -rf "$DATA" "$RUN" "$LOGS" "$CONF"
  say "data removed from $STACK_HOME (downloads in $DIST kept)"
}

cmd_pid() {
  local svc=${1:-} i
  [ -n "$svc" ] || die "pid needs a service name"
  if [[ " ${WORKER_GROUPS[*]} " == *" $svc "* ]]; then
    for i in $(seq 1 "$WORKER_SLOTS"); do sv_pid "$svc-$i"; done
  else
    sv_pid "$svc"
  fi
}

status_line() {
  local name=$1 state=$2 pid=$3
  local svc=$name
  [[ $name == *:* ]] && svc=${name#*:}
  local base=${svc%-[0-9]*}
  [[ $svc == kafka-* ]] && base=$svc
  printf '%-20s %-9s %-8s %-7s %s\n' "$svc" "$state" "$pid" "$(service_port "$base")" "$LOGS/$svc.log"
}

cmd_status() {
  local rc=0 s i state pid
  printf '%-20s %-9s %-8s %-7s %s\n' SERVICE STATE PID PORT LOG
  local names=("${STACK_SERVICES[@]}" web)
  for s in "${WORKER_GROUPS[@]}"; do
    for i in $(seq 1 "$WORKER_SLOTS"); do names+=("$s-$i"); done
  done
  refresh_status
  for s in "${names[@]}"; do
    state=$(sv_state "$s")
    # Idle worker slots are noise: instance 1 is always shown, the others while they run.
    if [[ $s =~ ^worker-.*-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != 1 ] && [ "$state" != RUNNING ]; then continue; fi
    pid=$(sv_pid "$s"); pid=${pid:--}
    status_line "$s" "$(echo "$state" | tr '[:upper:]' '[:lower:]')" "$pid"
  done
  for s in "${STACK_SERVICES[@]}"; do running "$s" || rc=3; done
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
  Kafka            $(bootstrap_servers)
  Schema registry  http://127.0.0.1:$REGISTRY_PORT/apis/registry/v3  (Confluent API /apis/ccompat/v7)
  Kafka Connect    http://127.0.0.1:$CONNECT_PORT/connectors
  Processes        make stack-status (supervisord: $SUPERVISOR_CONF)
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
    restart) [ $# -gt 0 ] || die "restart needs service names"; cmd_restart "$@" ;;
    scale) cmd_scale "$@" ;;
    pid) cmd_pid "$@" ;;
    down) cmd_down ;;
    purge) cmd_purge ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    urls) cmd_urls ;;
    brokers) bootstrap_servers ;;
    -h|--help|help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd'; see infra/stack.sh help" ;;
  esac
}

main "$@"
