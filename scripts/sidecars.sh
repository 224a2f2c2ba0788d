#!/usr/bin/env bash
# Local sidecars on 127.0.0.1: one indexer and three nodes in one private network (a fresh
# PSK), the nodes seeded with the indexer. site-c is an intermittent nano of site-a (its
# master), which lists it: `peers` shows the link and the profile. Each keeps its keys, log and pid in
# $GARDEN_NET/sidecars/<name>/. Each node serves its operator API on its own port (status
# shows it): `scripts/sidecars.sh garden site-a bookings list` runs a `garden` command there.
#
# Usage:
#   scripts/sidecars.sh start     build the `garden` binary (release) if needed, start all three
#   scripts/sidecars.sh stop
#   scripts/sidecars.sh status
#   scripts/sidecars.sh search NEEDLE [--json]   search the local network (name, DID or peer id)
#   scripts/sidecars.sh peers NEEDLE [--json]    the same with profiles and nano→master links
#   scripts/sidecars.sh garden NAME ARGS…        `garden ARGS…` against NAME's operator API
#                                                (outbox, resources …, bookings …)
source "$(dirname "$0")/lib.sh"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$GARDEN_CACHE/target}"
# GARDEN_BIN picks another build (scripts/test.sh uses the debug binary its tests built).
GARDEN="${GARDEN_BIN:-$CARGO_TARGET_DIR/release/garden}"
DIR="$GARDEN_NET/sidecars"
# name:port:role:operator API port (empty: none)
SIDECARS=(indexer:4101:indexer: site-a:4102:node:7452 site-b:4103:node:7453 site-c:4104:node:7454)

api_port() {  # name: its operator API port, if any
  local s n a
  for s in "${SIDECARS[@]}"; do IFS=: read -r n _ _ a <<<"$s"; [[ $n == "$1" ]] && { echo "$a"; return; }; done
}

running() { [[ -f $DIR/$1/garden.pid ]] && kill -0 "$(cat "$DIR/$1/garden.pid")" 2>/dev/null; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

build() {
  log "building the garden sidecar (release)"
  (cd "$GARDEN_ROOT" && cargo build --locked --release -p garden-sidecar --bin garden) \
    || die "building the garden sidecar failed (see cargo output above)"
}

seed_addr() {
  local id; id=$(cat "$DIR/indexer/peer_id")
  echo "/ip4/127.0.0.1/tcp/4101/p2p/$id"
}

identity() {  # name: its key and peer id, made once
  local d="$DIR/$1"
  mkdir -p "$d"
  if [[ ! -f $d/garden-identity.key ]]; then
    "$GARDEN" keygen --identity "$d/garden-identity.key" --json | jq -r .peer_id > "$d/peer_id" \
      || die "$1: keygen failed"
  fi
}

start_one() {  # name port role api-port
  local name="$1" port="$2" role="$3" api="$4" d="$DIR/$1"
  local api_listen=""; [[ -n $api ]] && api_listen="127.0.0.1:$api"
  if running "$name"; then log "$name already running (pid $(cat "$d/garden.pid"))"; return; fi
  port_in_use "$port" && die "$name: port 127.0.0.1:$port is already in use (ss -ltnp | grep :$port)"
  local seeds=""; [[ $role == node ]] && seeds=$(seed_addr)
  # The delegation pair: site-a answers for site-c, an intermittent site (away ≤ 10 min).
  local -a extra=()
  case "$name" in
    site-a) extra=(GARDEN_DELEGATION_NANOS="$(cat "$DIR/site-c/peer_id")") ;;
    site-c) extra=(GARDEN_DELEGATION_MASTER="$(cat "$DIR/site-a/peer_id")"
                   GARDEN_PROFILE_KIND=intermittent GARDEN_PROFILE_MAX_ABSENCE_SECS=600) ;;
  esac
  (
    cd "$d"
    [[ ${#extra[@]} -eq 0 ]] || export "${extra[@]}"
    GARDEN_IDENTITY_KEY_FILE="$d/garden-identity.key" GARDEN_IDENTITY_PSK_FILE="$DIR/swarm.key" \
    GARDEN_NETWORK_LISTEN="/ip4/127.0.0.1/tcp/$port" GARDEN_NETWORK_SEEDS="$seeds" \
    GARDEN_DISCOVERY_NAME="$name" GARDEN_API_LISTEN="$api_listen" RUST_LOG="${RUST_LOG:-info}" \
      nohup "$GARDEN" run --role "$role" > "$d/garden.log" 2>&1 &
    echo $! > "$d/garden.pid"
  )
  local deadline=$(( $(date +%s) + 30 ))
  until port_in_use "$port"; do
    running "$name" || die "$name exited at start; last log lines: $(tail -n 3 "$d/garden.log" | tr '\n' ' ')"
    [[ $(date +%s) -lt $deadline ]] || die "$name did not listen on 127.0.0.1:$port within 30 s; see $d/garden.log"
    sleep 0.2
  done
  log "$name ($role) up: peer $(cat "$d/peer_id"), 127.0.0.1:$port, log $d/garden.log"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  start)
    need jq
    [[ -x $GARDEN ]] || build
    mkdir -p "$DIR"
    [[ -f $DIR/swarm.key ]] || "$GARDEN" keygen --identity "$DIR/.psk-owner.key" --psk "$DIR/swarm.key" >/dev/null \
      || die "could not create the private-network PSK"
    # Every identity first: a master and its nano name each other in their records.
    for s in "${SIDECARS[@]}"; do IFS=: read -r n _ _ <<<"$s"; identity "$n"; done
    for s in "${SIDECARS[@]}"; do IFS=: read -r n p r a <<<"$s"; start_one "$n" "$p" "$r" "$a"; done ;;
  stop)
    for s in "${SIDECARS[@]}"; do
      IFS=: read -r n _ _ <<<"$s"
      if running "$n"; then kill "$(cat "$DIR/$n/garden.pid")"; log "$n stopped"; fi
      rm -f "$DIR/$n/garden.pid"
    done ;;
  status)
    for s in "${SIDECARS[@]}"; do
      IFS=: read -r n p r a <<<"$s"
      local_api="-"; [[ -n $a ]] && local_api="http://127.0.0.1:$a"
      if running "$n"; then echo -e "$n\t$r\trunning\t127.0.0.1:$p\t$(cat "$DIR/$n/peer_id")\tapi $local_api"; else echo -e "$n\t$r\tstopped"; fi
    done ;;
  garden)
    [[ $# -ge 2 ]] || die "usage: scripts/sidecars.sh garden NAME ARGS… (e.g. site-a bookings list)"
    name="$1"; shift
    port=$(api_port "$name"); [[ -n $port ]] || die "$name has no operator API (nodes do: site-a, site-b, site-c)"
    GARDEN_API_URL="http://127.0.0.1:$port" exec "$GARDEN" "$@" ;;
  search|peers)
    [[ $# -ge 1 ]] || die "usage: scripts/sidecars.sh $cmd NEEDLE [--json]"
    [[ -f $DIR/swarm.key ]] || die "no local sidecar network: scripts/sidecars.sh start"
    GARDEN_IDENTITY_PSK_FILE="$DIR/swarm.key" GARDEN_NETWORK_SEEDS="$(seed_addr)" \
      "$GARDEN" "$cmd" "$@" ;;
  -h|--help|"") sed -n '2,14p' "$0" ;;
  *) die "unknown command '$cmd' (start|stop|status|search|peers|garden)" ;;
esac
