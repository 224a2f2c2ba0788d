# shellcheck shell=bash
# The consortium zone through the chain CLI, for scripts that send transactions
# (deploy-contracts.sh, gov-proposal.sh). Sourced after lib.sh.
#
# Sets CHAIN_ID DENOM RPC_PORT (chain-config/garden-zone.env; `use_chain garden-settle` switches),
# H (chain home), NODE, and Q
# (query flags); zone_tx FROM ARGS... broadcasts `wasmd tx ARGS...` from the test account FROM,
# waits for the block and prints the committed result as JSON (GAS_ADJUSTMENT, default 1.4).

garden_tool_env
need wasmd; need jq; need curl

# use_chain NAME: point CHAIN_ID DENOM RPC_PORT H NODE Q at another local chain
# (chain-config/NAME.env); scripts that act on both chains switch with it.
use_chain() {
  # shellcheck disable=SC1090
  source "$GARDEN_ROOT/chain-config/$1.env"
  H="$GARDEN_NET/$CHAIN_ID"
  [[ -d $H ]] || die "$CHAIN_ID has no state in $H: start it with scripts/localnet.sh start"
  NODE="tcp://127.0.0.1:$RPC_PORT"
  curl -sf --max-time 2 "http://127.0.0.1:$RPC_PORT/status" >/dev/null \
    || die "$CHAIN_ID is not answering on $NODE: start it with scripts/localnet.sh start"
  Q=(--home "$H" --node "$NODE" --output json)
}
use_chain garden-zone
GAS_ADJUSTMENT="${GAS_ADJUSTMENT:-1.4}"
ZONE_ERR=$(mktemp)

# Fails with the chain's log when the tx is refused, not committed in 30 s, or failed.
zone_tx() {
  local from="$1"; shift
  local out hash res code
  out=$(wasmd tx "$@" --from "$from" --home "$H" --node "$NODE" --chain-id "$CHAIN_ID" \
        --keyring-backend test --output json -y --gas auto --gas-adjustment "$GAS_ADJUSTMENT" \
        --gas-prices "0$DENOM" 2>"$ZONE_ERR") || die "wasmd tx $1 $2 failed: $(tail -n 2 "$ZONE_ERR")"
  code=$(jq -r '.code // 0' <<<"$out" 2>/dev/null || echo 1)
  [[ $code == 0 ]] || die "wasmd tx $1 $2 refused: $(jq -r .raw_log <<<"$out" 2>/dev/null || echo "$out")"
  hash=$(jq -r .txhash <<<"$out")
  # wait-tx listens on the node's websocket, which can drop under load: fall back to
  # looking the hash up before giving up.
  if ! res=$(wasmd q wait-tx "$hash" --timeout 30s "${Q[@]}" 2>"$ZONE_ERR"); then
    local tries=0
    until res=$(wasmd q tx "$hash" "${Q[@]}" 2>>"$ZONE_ERR"); do
      tries=$((tries + 1))
      [[ $tries -lt 30 ]] || die "tx $hash not committed: $(tail -n 2 "$ZONE_ERR")"
      sleep 1
    done
  fi
  code=$(jq -r '.code // 0' <<<"$res")
  [[ $code == 0 ]] || die "tx $hash failed: $(jq -r .raw_log <<<"$res")"
  echo "$res"
}

# event_attr TX_JSON EVENT_TYPE KEY: the first value of that attribute, or fail.
event_attr() {
  local v
  v=$(jq -r --arg t "$2" --arg k "$3" \
    '[.events[] | select(.type == $t) | .attributes[] | select(.key == $k) | .value][0] // empty' <<<"$1")
  [[ -n $v ]] || die "no $2.$3 event in the transaction result"
  echo "$v"
}

# Address of the x/gov module account (the contracts' admin).
gov_address() {
  local a
  a=$(wasmd q auth module-account gov "${Q[@]}" \
      | jq -r '.account.value.address // .account.base_account.address // .account.address')
  [[ $a == wasm1* ]] || die "could not read the x/gov module account address"
  echo "$a"
}
