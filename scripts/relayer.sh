#!/usr/bin/env bash
# Hermes between the local consortium zone and the settlement chain (relayer-config/hermes.toml).
# Hermes' keyring lives under $GARDEN_NET/hermes (wiped with the localnet).
#
# Usage:
#   scripts/relayer.sh keys                   import the `relayer` test account on both chains
#   scripts/relayer.sh connection             create a client pair and a connection zone <-> settle;
#                                             its ids go to $GARDEN_NET/hermes/connection.json
#   scripts/relayer.sh channel PORT_A PORT_B [ZONE_CONNECTION]
#                                             create a channel zone -> settle over ZONE_CONNECTION
#                                             (else a new client + connection); its ids go to
#                                             $GARDEN_NET/hermes/channel-PORT_A-PORT_B.json
#   scripts/relayer.sh start | stop | status  run Hermes in the background (log in $GARDEN_NET/hermes)
#   scripts/relayer.sh hermes ARGS...         run any hermes command with Garden's config
source "$(dirname "$0")/lib.sh"
garden_tool_env

CONFIG="$GARDEN_ROOT/relayer-config/hermes.toml"
HHOME="$GARDEN_NET/hermes"
PIDFILE="$HHOME/hermes.pid"
LOG="$HHOME/hermes.log"
mkdir -p "$HHOME"

hermes_cmd() { HOME="$HHOME" hermes --config "$CONFIG" "$@"; }
running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

cmd="${1:-}"; shift || true
case "$cmd" in
  keys)
    need hermes "scripts/install-deps.sh --only hermes"
    source "$GARDEN_ROOT/chain-config/accounts.env"
    m="$HHOME/relayer.mnemonic"; umask 077; echo "$MNEMONIC_RELAYER" > "$m"
    for c in garden-zone garden-settle; do
      hermes_cmd keys add --chain "$c" --mnemonic-file "$m" --overwrite >/dev/null \
        || die "hermes could not import the relayer key for $c"
    done
    rm -f "$m"; log "relayer key imported for garden-zone and garden-settle" ;;
  connection)
    log "creating clients and a connection garden-zone <-> garden-settle"
    out=$(hermes_cmd --json create connection --a-chain garden-zone --b-chain garden-settle 2>&1) \
      || die "hermes create connection failed: $(tail -n 3 <<<"$out")"
    ids=$(grep '"result"' <<<"$out" | tail -1 | jq -c \
      '{zone: .result.a_side.connection_id, settle: .result.b_side.connection_id}') \
      || die "could not read the connection ids from Hermes' answer"
    [[ $(jq -r .zone <<<"$ids") == connection-* ]] || die "no connection id in Hermes' answer: $out"
    # Contracts that accept packets only over one connection read their ids from here.
    echo "$ids" > "$HHOME/connection.json"
    echo "$ids" ;;
  channel)
    [[ $# -eq 2 || $# -eq 3 ]] || die "usage: scripts/relayer.sh channel PORT_A PORT_B [ZONE_CONNECTION]"
    if [[ $# -eq 3 ]]; then
      log "creating channel $1 (garden-zone) <-> $2 (garden-settle) over $3"
      over=(--a-connection "$3")
    else
      log "creating channel $1 (garden-zone) <-> $2 (garden-settle) with a new client and connection"
      over=(--b-chain garden-settle --new-client-connection --yes)
    fi
    out=$(hermes_cmd --json create channel --a-chain garden-zone \
      --a-port "$1" --b-port "$2" "${over[@]}" 2>&1) \
      || die "hermes create channel failed: $(tail -n 3 <<<"$out")"
    ids=$(grep '"result"' <<<"$out" | tail -1 | jq -c --arg a "$1" --arg b "$2" \
      '{zone_port: $a, zone: .result.a_side.channel_id, settle_port: $b, settle: .result.b_side.channel_id}') \
      || die "could not read the channel ids from Hermes' answer"
    # Tests and later scripts read the channel of a port pair from here.
    echo "$ids" > "$HHOME/channel-$1-$2.json"
    echo "$ids" ;;
  start)
    running && { log "hermes already running (pid $(cat "$PIDFILE"))"; exit 0; }
    need hermes "scripts/install-deps.sh --only hermes"
    HOME="$HHOME" nohup hermes --config "$CONFIG" start >"$LOG" 2>&1 &
    echo $! > "$PIDFILE"
    sleep 1; running || die "hermes exited at start; see $LOG"
    log "hermes started (pid $(cat "$PIDFILE"), log $LOG)" ;;
  stop)
    if running; then kill "$(cat "$PIDFILE")"; log "hermes stopped"; fi
    rm -f "$PIDFILE" ;;
  status) if running; then echo "hermes running (pid $(cat "$PIDFILE"))"; else echo "hermes stopped"; fi ;;
  hermes) hermes_cmd "$@" ;;
  -h|--help|"") sed -n '2,14p' "$0" ;;
  *) die "unknown command '$cmd' (keys|connection|channel|start|stop|status|hermes)" ;;
esac
