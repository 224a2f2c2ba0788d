#!/usr/bin/env bash
# Deploys Garden's contracts on the local consortium zone with the chain CLI (wasmd):
# the admin account stores the code (the zone's code upload is permissioned), then the
# consortium contract is instantiated with the founding members of chain-config/founders.json
# and the settlement contract pointing at it. The x/gov module account is the contracts'
# admin (wasm-level admin for migrations and the consortium's governance admin), so chain
# governance proposals can act on them (see docs/CONTRACTS.md).
# Writes the addresses to $GARDEN_NET/deployment.json and prints them.
#
# Usage: scripts/deploy-contracts.sh [--json]
source "$(dirname "$0")/lib.sh"
garden_tool_env
need wasmd; need jq

JSON=0; [[ ${1:-} == --json ]] && JSON=1
source "$GARDEN_ROOT/chain-config/garden-zone.env"
H="$GARDEN_NET/$CHAIN_ID"
[[ -d $H ]] || die "$CHAIN_ID has no state in $H: start it with scripts/localnet.sh start"
NODE="tcp://127.0.0.1:$RPC_PORT"
curl -sf --max-time 2 "http://127.0.0.1:$RPC_PORT/status" >/dev/null \
  || die "$CHAIN_ID is not answering on $NODE: start it with scripts/localnet.sh start"
Q=(--home "$H" --node "$NODE" --output json)
TX=(--home "$H" --node "$NODE" --chain-id "$CHAIN_ID" --keyring-backend test --output json -y
    --gas auto --gas-adjustment 1.4 --gas-prices "0$DENOM")

addr() { wasmd keys show "$1" -a --keyring-backend test --home "$H"; }

# Broadcasts, waits for the block, fails with the chain's log if the tx failed; prints the tx JSON.
ERR=$(mktemp); trap 'rm -f "$ERR"' EXIT
run_tx() {
  local out hash res code
  out=$(wasmd tx "$@" "${TX[@]}" 2>"$ERR") || die "wasmd tx $1 $2 failed: $(tail -n 2 "$ERR")"
  code=$(jq -r '.code // 0' <<<"$out" 2>/dev/null || echo 1)
  [[ $code == 0 ]] || die "wasmd tx $1 $2 refused: $(jq -r .raw_log <<<"$out" 2>/dev/null || echo "$out")"
  hash=$(jq -r .txhash <<<"$out")
  res=$(wasmd q wait-tx "$hash" --timeout 30s "${Q[@]}" 2>"$ERR") || die "tx $hash not committed: $(tail -n 2 "$ERR")"
  code=$(jq -r '.code // 0' <<<"$res")
  [[ $code == 0 ]] || die "tx $hash failed: $(jq -r .raw_log <<<"$res")"
  echo "$res"
}
event_attr() {  # tx-json event-type key
  local v; v=$(jq -r --arg t "$2" --arg k "$3" '[.events[] | select(.type == $t) | .attributes[] | select(.key == $k) | .value][0] // empty' <<<"$1")
  [[ -n $v ]] || die "no $2.$3 event in the transaction result"
  echo "$v"
}

store() {
  local wasm="$GARDEN_ROOT/artifacts/garden_$1.wasm" res
  [[ -f $wasm ]] || die "$wasm missing: run scripts/build-contracts.sh"
  res=$(run_tx wasm store "$wasm" --from admin)
  event_attr "$res" store_code code_id
}

instantiate() {  # code_id label msg -> address
  local res
  res=$(run_tx wasm instantiate "$1" "$3" --label "$2" --admin "$GOV" --from admin)
  event_attr "$res" instantiate _contract_address
}

GOV=$(wasmd q auth module-account gov "${Q[@]}" | jq -r '.account.value.address // .account.base_account.address // .account.address')
[[ $GOV == wasm1* ]] || die "could not read the x/gov module account address"

log "storing contracts as admin ($(addr admin))"
CONSORTIUM_CODE=$(store consortium)
SETTLEMENT_CODE=$(store settlement)

MEMBERS=$(jq -c '[.members[]]' "$GARDEN_ROOT/chain-config/founders.json")
MEMBERS_JSON="[]"
for row in $(jq -c '.[]' <<<"$MEMBERS"); do
  a=$(addr "$(jq -r .account <<<"$row")")
  MEMBERS_JSON=$(jq -c --arg a "$a" --argjson r "$row" '. + [{addr: $a, pubkey: $r.pubkey, level: $r.level, weight: $r.weight}]' <<<"$MEMBERS_JSON")
done
INIT=$(jq -nc --argjson m "$MEMBERS_JSON" --arg gov "$GOV" '{members: $m, params: null, admin: $gov}')
log "instantiating consortium (code $CONSORTIUM_CODE) with $(jq length <<<"$MEMBERS_JSON") founding members"
CONSORTIUM=$(instantiate "$CONSORTIUM_CODE" "garden-consortium" "$INIT")

INIT=$(jq -nc --arg c "$CONSORTIUM" --arg gov "$GOV" --arg denom "$DENOM" \
  "$(cat "$GARDEN_ROOT/chain-config/settlement-init.jq")")
log "instantiating settlement (code $SETTLEMENT_CODE)"
SETTLEMENT=$(instantiate "$SETTLEMENT_CODE" "garden-settlement" "$INIT")

DEPLOY=$(jq -n --arg chain "$CHAIN_ID" --arg gov "$GOV" \
  --arg cc "$CONSORTIUM_CODE" --arg ca "$CONSORTIUM" --arg sc "$SETTLEMENT_CODE" --arg sa "$SETTLEMENT" \
  '{chain_id: $chain, governance: $gov,
    consortium: {code_id: ($cc | tonumber), address: $ca},
    settlement: {code_id: ($sc | tonumber), address: $sa}}')
echo "$DEPLOY" > "$GARDEN_NET/deployment.json"
if [[ $JSON -eq 1 ]]; then echo "$DEPLOY"; else
  log "deployed on $CHAIN_ID (written to $GARDEN_NET/deployment.json):"
  printf '  consortium  code %-3s %s\n  settlement  code %-3s %s\n' "$CONSORTIUM_CODE" "$CONSORTIUM" "$SETTLEMENT_CODE" "$SETTLEMENT"
fi
