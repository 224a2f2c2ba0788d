#!/usr/bin/env bash
# Local wasmd network on 127.0.0.1 only: the consortium zone (garden-zone) and, with
# --two-chain, the settlement chain (garden-settle). Configuration: chain-config/*.env.
#
# Usage:
#   scripts/localnet.sh start [--two-chain] [--reset]   init if needed, start, wait for blocks
#   scripts/localnet.sh stop                            stop every local chain
#   scripts/localnet.sh status [--json]                 running chains and their heights
#   scripts/localnet.sh reset                           stop and delete all chain state
#
# Environment: GARDEN_NET (state dir, default ~/.cache/garden/localnet),
#              GARDEN_START_TIMEOUT (seconds to wait for the first blocks, default 90).
source "$(dirname "$0")/lib.sh"
garden_tool_env

CHAINS_ALL=(garden-zone garden-settle)
START_TIMEOUT="${GARDEN_START_TIMEOUT:-90}"

load_chain() {  # sets CHAIN_ID DENOM *_PORT HOME_DIR LOG PIDFILE for chain $1
  local f="$GARDEN_ROOT/chain-config/$1.env"
  [[ -f $f ]] || die "unknown chain '$1' (no $f)"
  # shellcheck disable=SC1090
  source "$f"
  HOME_DIR="$GARDEN_NET/$CHAIN_ID"
  LOG="$HOME_DIR/wasmd.log"
  PIDFILE="$HOME_DIR/wasmd.pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

is_running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

rpc_height() {
  curl -sf --max-time 2 "http://127.0.0.1:$RPC_PORT/status" | jq -r '.result.sync_info.latest_block_height' 2>/dev/null
}

init_chain() {
  # shellcheck disable=SC1091
  source "$GARDEN_ROOT/chain-config/params.env"
  # shellcheck disable=SC1091
  source "$GARDEN_ROOT/chain-config/accounts.env"
  log "$CHAIN_ID: initialising in $HOME_DIR"
  rm -rf "$HOME_DIR"; mkdir -p "$HOME_DIR"
  local w=(--home "$HOME_DIR")
  wasmd init validator --chain-id "$CHAIN_ID" --default-denom "$DENOM" "${w[@]}" >/dev/null 2>&1 \
    || die "$CHAIN_ID: wasmd init failed"
  local name mnemonic addr
  for name in $ACCOUNTS; do
    mnemonic="$(eval echo "\$MNEMONIC_${name^^}")"
    [[ -n $mnemonic ]] || die "chain-config/accounts.env has no MNEMONIC_${name^^}"
    echo "$mnemonic" | wasmd keys add "$name" --recover --keyring-backend test "${w[@]}" >/dev/null 2>&1 \
      || die "$CHAIN_ID: cannot import key '$name'"
    addr=$(wasmd keys show "$name" -a --keyring-backend test "${w[@]}")
    wasmd genesis add-genesis-account "$addr" "$ACCOUNT_BALANCE$DENOM" "${w[@]}" >/dev/null \
      || die "$CHAIN_ID: add-genesis-account $name failed"
  done
  wasmd genesis gentx validator "$VALIDATOR_BOND$DENOM" --chain-id "$CHAIN_ID" \
    --keyring-backend test "${w[@]}" >/dev/null 2>&1 || die "$CHAIN_ID: gentx failed"
  wasmd genesis collect-gentxs "${w[@]}" >/dev/null 2>&1 || die "$CHAIN_ID: collect-gentxs failed"

  # Permissioned code upload: only the consortium admin account may store code directly;
  # governance (the x/gov module account) can always store code and change this list
  # through MsgUpdateParams. Instantiation stays open: it only runs code already vetted.
  local admin; admin=$(wasmd keys show admin -a --keyring-backend test "${w[@]}")
  local g="$HOME_DIR/config/genesis.json"
  jq --arg admin "$admin" --arg denom "$DENOM" --arg maxgas "$BLOCK_MAX_GAS" \
     --arg vp "$GOV_VOTING_PERIOD" --arg evp "$GOV_EXPEDITED_VOTING_PERIOD" \
     --arg mindep "$GOV_MIN_DEPOSIT" '
    .app_state.wasm.params.code_upload_access = {permission: "AnyOfAddresses", addresses: [$admin]}
    | .app_state.wasm.params.instantiate_default_permission = "Everybody"
    | .consensus.params.block.max_gas = $maxgas
    | .app_state.gov.params.voting_period = $vp
    | .app_state.gov.params.expedited_voting_period = $evp
    | .app_state.gov.params.min_deposit = [{denom: $denom, amount: $mindep}]
    | .app_state.gov.params.expedited_min_deposit = [{denom: $denom, amount: ($mindep | tonumber * 2 | tostring)}]
    | .app_state.staking.params.bond_denom = $denom
    | .app_state.mint.params.mint_denom = $denom
  ' "$g" > "$g.tmp" && mv "$g.tmp" "$g" || die "$CHAIN_ID: genesis patch failed"
  wasmd genesis validate-genesis "${w[@]}" >/dev/null 2>&1 \
    || die "$CHAIN_ID: patched genesis does not validate (run: wasmd genesis validate-genesis --home $HOME_DIR)"

  # Node config: loopback only, fast blocks, no pprof/API servers that would collide.
  local c="$HOME_DIR/config/config.toml" a="$HOME_DIR/config/app.toml"
  sed -i -E \
    -e "s|^timeout_commit = .*|timeout_commit = \"$TIMEOUT_COMMIT\"|" \
    -e "s|^laddr = \"tcp://127.0.0.1:26657\"|laddr = \"tcp://127.0.0.1:$RPC_PORT\"|" \
    -e "s|^laddr = \"tcp://0.0.0.0:26656\"|laddr = \"tcp://127.0.0.1:$P2P_PORT\"|" \
    -e "s|^pprof_laddr = .*|pprof_laddr = \"\"|" \
    -e "s|^addr_book_strict = .*|addr_book_strict = false|" \
    -e "s|^cors_allowed_origins = .*|cors_allowed_origins = []|" "$c"
  sed -i -E \
    -e "s|^minimum-gas-prices = .*|minimum-gas-prices = \"0$DENOM\"|" \
    -e "s|^address = \"localhost:9090\"|address = \"127.0.0.1:$GRPC_PORT\"|" \
    -e "s|^address = \"0.0.0.0:9090\"|address = \"127.0.0.1:$GRPC_PORT\"|" "$a"
  # The REST API server stays off ([api] enable = false is the default).
  wasmd config set client chain-id "$CHAIN_ID" "${w[@]}" >/dev/null 2>&1 || true
  wasmd config set client keyring-backend test "${w[@]}" >/dev/null 2>&1 || true
  wasmd config set client node "tcp://127.0.0.1:$RPC_PORT" "${w[@]}" >/dev/null 2>&1 || true
}

start_chain() {
  load_chain "$1"
  if is_running; then
    if [[ $RESET -eq 0 ]]; then log "$CHAIN_ID: already running (pid $(cat "$PIDFILE"), height $(rpc_height))"; return; fi
    stop_chain "$1"; load_chain "$1"
  fi
  [[ -f $HOME_DIR/config/genesis.json && $RESET -eq 0 ]] || init_chain
  local p
  for p in "$RPC_PORT" "$P2P_PORT" "$GRPC_PORT"; do
    port_in_use "$p" && die "$CHAIN_ID: port 127.0.0.1:$p is already in use; stop what holds it (ss -ltnp | grep :$p) or edit chain-config/$1.env"
  done
  log "$CHAIN_ID: starting (rpc 127.0.0.1:$RPC_PORT, grpc 127.0.0.1:$GRPC_PORT, log $LOG)"
  nohup wasmd start --home "$HOME_DIR" \
    --rpc.laddr "tcp://127.0.0.1:$RPC_PORT" --p2p.laddr "tcp://127.0.0.1:$P2P_PORT" \
    --grpc.address "127.0.0.1:$GRPC_PORT" --api.enable=false --rpc.pprof_laddr "" \
    >"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  local deadline=$(( $(date +%s) + START_TIMEOUT )) h
  while :; do
    h=$(rpc_height || true)
    [[ -n $h && $h != null && $h -ge 2 ]] && break
    is_running || die "$CHAIN_ID: wasmd exited during start; last log lines: $(tail -n 3 "$LOG" | tr '\n' ' ')"
    if [[ $(date +%s) -ge $deadline ]]; then
      kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"
      die "$CHAIN_ID: no block within ${START_TIMEOUT}s (stopped it); see $LOG (raise GARDEN_START_TIMEOUT on a slow machine)"
    fi
    sleep 0.5
  done
  log "$CHAIN_ID: producing blocks (height $h)"
}

stop_chain() {
  load_chain "$1"
  if ! is_running; then rm -f "$PIDFILE"; return; fi
  local pid; pid=$(cat "$PIDFILE")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "$CHAIN_ID: stopped"
}

status() {
  local json=0; [[ ${1:-} == --json ]] && json=1
  local out="[]" c running h
  for c in "${CHAINS_ALL[@]}"; do
    load_chain "$c"
    running=false; h=null
    if is_running; then running=true; h=$(rpc_height || echo null); fi
    out=$(jq -c --arg id "$CHAIN_ID" --argjson r "$running" --arg h "${h:-null}" \
      --arg rpc "http://127.0.0.1:$RPC_PORT" --arg home "$HOME_DIR" \
      '. + [{chain_id: $id, running: $r, height: ($h | tonumber? // null), rpc: $rpc, home: $home}]' <<<"$out")
  done
  if [[ $json -eq 1 ]]; then echo "$out"; else
    jq -r '.[] | "\(.chain_id)\t\(if .running then "running" else "stopped" end)\theight=\(.height // "-")\t\(.rpc)"' <<<"$out"
  fi
}

cmd="${1:-}"; shift || true
RESET=0; TWO=0
for a in "$@"; do
  case "$a" in
    --reset) RESET=1 ;; --two-chain) TWO=1 ;; --json) ;;
    *) die "unknown option '$a' (see scripts/localnet.sh --help)" ;;
  esac
done
case "$cmd" in
  start)
    need wasmd; need jq; need curl
    mkdir -p "$GARDEN_NET"
    if [[ $RESET -eq 1 ]]; then
      # What was derived from the old chains is void with them: deployments, Hermes' client,
      # connection and channel ids, queues bound to old contracts. Hermes' keyring stays.
      rm -rf "$GARDEN_NET"/deployment*.json "$GARDEN_NET"/hermes/connection.json \
        "$GARDEN_NET"/hermes/channel-*.json "$GARDEN_NET"/e2e-*
    fi
    start_chain garden-zone
    [[ $TWO -eq 1 ]] && start_chain garden-settle
    status ;;
  stop) for c in "${CHAINS_ALL[@]}"; do stop_chain "$c"; done ;;
  status) status "$@" ;;
  reset) for c in "${CHAINS_ALL[@]}"; do stop_chain "$c"; done; rm -rf "$GARDEN_NET"; log "local chain state deleted" ;;
  -h|--help|"") sed -n '2,13p' "$0" ;;
  *) die "unknown command '$cmd' (start|stop|status|reset)" ;;
esac
