#!/usr/bin/env bash
# A local nats-server (JetStream on) on 127.0.0.1, for tests and development.
#
# Usage: scripts/nats.sh start [--port N] [--dir DIR]   starts it; prints its URL
#        scripts/nats.sh stop [--dir DIR] [--kill]      stops it (--kill: SIGKILL)
#        scripts/nats.sh path                            prints the nats-server binary used
# --port: default a free port; --dir: default $GARDEN_CACHE/nats. DIR holds the JetStream
# store (js/), the pid file, the port and the log; starting again with the same DIR (and
# port) keeps the streams, as after a server restart. Binary: $GARDEN_NATS_SERVER, else the
# pinned one scripts/install-deps.sh builds.
source "$(dirname "$0")/lib.sh"

CMD="${1:-}"; [[ $# -gt 0 ]] && shift
PORT=""; DIR="$GARDEN_CACHE/nats"; KILL=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="${2:?--port needs a number}"; shift ;;
    --dir) DIR="${2:?--dir needs a directory}"; shift ;;
    --kill) KILL=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
BIN="$(nats_server_bin)"

alive() { [[ -f "$DIR/nats.pid" ]] && kill -0 "$(cat "$DIR/nats.pid")" 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  [[ -x "$BIN" ]] || die "nats-server not found at $BIN: run scripts/install-deps.sh --only nats-server"
  alive && die "nats-server already running from $DIR (pid $(cat "$DIR/nats.pid"))"
  mkdir -p "$DIR/js"
  [[ -n "$PORT" ]] || PORT="$(free_port)"
  : > "$DIR/nats.log"
  # setsid: the server outlives this script and is not in the caller's process group.
  setsid "$BIN" -a 127.0.0.1 -p "$PORT" -js -sd "$DIR/js" -l "$DIR/nats.log" \
    </dev/null >/dev/null 2>&1 &
  echo $! > "$DIR/nats.pid"
  echo "$PORT" > "$DIR/port"
  local i
  for i in $(seq 1 100); do
    if grep -q "Server is ready" "$DIR/nats.log" 2>/dev/null; then
      printf 'nats://127.0.0.1:%s\n' "$PORT"
      return
    fi
    alive || break
    sleep 0.1
  done
  tail -5 "$DIR/nats.log" >&2 || true
  die "nats-server did not become ready on 127.0.0.1:$PORT (log: $DIR/nats.log)"
}

stop() {
  if ! alive; then rm -f "$DIR/nats.pid"; return; fi
  local pid; pid="$(cat "$DIR/nats.pid")"
  if [[ $KILL -eq 1 ]]; then kill -KILL "$pid"; else kill -TERM "$pid"; fi
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$DIR/nats.pid"; return; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/nats.pid"
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  path) printf '%s\n' "$BIN" ;;
  *) die "usage: scripts/nats.sh start|stop|path [--port N] [--dir DIR] [--kill]" ;;
esac
