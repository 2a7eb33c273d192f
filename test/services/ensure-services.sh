#!/usr/bin/env bash
# Makes RabbitMQ and ClickHouse reachable on their default ports for the tests.
#
# Uses whatever already answers. Otherwise, on Debian as root, installs the
# missing server from Debian's packages and starts it, then waits until it
# answers. Anywhere else it says how to start both with docker compose.
# Idempotent, and quick when everything already runs.
set -euo pipefail

RABBITMQ_HOST=127.0.0.1
RABBITMQ_PORT=5672
CLICKHOUSE_URL=http://127.0.0.1:8123
WAIT_SECONDS=${TRACEHOUSE_SERVICES_WAIT:-90}

log() { echo "[services] $*"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
clickhouse_answers() { curl -fsS --max-time 2 "$CLICKHOUSE_URL/ping" >/dev/null 2>&1; }
rabbitmq_answers() { port_open "$RABBITMQ_HOST" "$RABBITMQ_PORT"; }

can_install() { [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; }

docker_hint() {
  log "$1 is not reachable and cannot be installed here (needs Debian and root)."
  log "Start it with: docker compose up -d rabbitmq clickhouse"
  exit 1
}

apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_until() {
  local what=$1 check=$2
  for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    if $check; then log "$what is up"; return 0; fi
    sleep 0.5
  done
  log "$what did not answer within ${WAIT_SECONDS}s"
  return 1
}

ensure_rabbitmq() {
  if rabbitmq_answers; then log "RabbitMQ answers on $RABBITMQ_HOST:$RABBITMQ_PORT"; return; fi
  can_install || docker_hint RabbitMQ
  command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
  log "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_until RabbitMQ rabbitmq_answers
  rabbitmqctl await_startup >/dev/null 2>&1 || true
}

ensure_clickhouse() {
  if clickhouse_answers; then log "ClickHouse answers on $CLICKHOUSE_URL"; return; fi
  can_install || docker_hint ClickHouse
  [[ -x /usr/sbin/clickhouse-server ]] || apt_install clickhouse-server clickhouse-client
  log "starting ClickHouse"
  mkdir -p /var/lib/clickhouse /var/log/clickhouse-server
  chown -R clickhouse:clickhouse /var/lib/clickhouse /var/log/clickhouse-server
  start-stop-daemon --start --oknodo --background --chuid clickhouse:clickhouse \
    --exec /usr/sbin/clickhouse-server -- --config=/etc/clickhouse-server/config.xml
  wait_until ClickHouse clickhouse_answers
}

ensure_rabbitmq
ensure_clickhouse
