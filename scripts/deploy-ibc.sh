#!/usr/bin/env bash
# Deploys Garden in IBC mode on the two-chain localnet with the chain CLI:
#   garden-zone   consortium (founding members of chain-config/founders.json) + gateway
#   garden-settle settlement (offers, escrow, payment; no consortium on that chain)
# and opens the attestation channel between the gateway's and the settlement's wasm ports
# with Hermes over a connection of their own. Each contract accepts packets only from that
# connection and the other's port, so the settlement address is fixed before the gateway
# exists: it is instantiated with instantiate2 (address = f(code, creator, salt)).
# The x/gov module account of each chain is the admin of the contracts on it.
# Writes $GARDEN_NET/deployment-ibc.json and prints it.
#
# Needs: both chains running (scripts/localnet.sh start --two-chain), Hermes installed and
# its keys imported (scripts/relayer.sh keys). Hermes need not be running to deploy; it must
# run (scripts/relayer.sh start) for packets to move.
#
# Usage: scripts/deploy-ibc.sh [--json]
source "$(dirname "$0")/lib.sh"
JSON=0; [[ ${1:-} == --json ]] && JSON=1
source "$GARDEN_ROOT/scripts/zone-cli.sh"
trap 'rm -f "$ZONE_ERR"' EXIT

addr() { wasmd keys show "$1" -a --keyring-backend test --home "$H"; }
store() {  # name -> code id on the current chain
  local wasm="$GARDEN_ROOT/artifacts/garden_$1.wasm" res
  [[ -f $wasm ]] || die "$wasm missing: run scripts/build-contracts.sh"
  res=$(zone_tx admin wasm store "$wasm")
  event_attr "$res" store_code code_id
}
instantiate() {  # code_id label msg admin -> address
  local res
  res=$(zone_tx admin wasm instantiate "$1" "$3" --label "$2" --admin "$4")
  event_attr "$res" instantiate _contract_address
}

CONN_FILE="$GARDEN_NET/hermes/connection.json"
# A recorded connection is reused only if the zone still knows it (chains may have been reset).
if [[ -f $CONN_FILE ]] && ! wasmd q ibc connection end "$(jq -r .zone "$CONN_FILE")" "${Q[@]}" >/dev/null 2>&1; then
  warn "recorded connection $(jq -r .zone "$CONN_FILE") is unknown to the zone: creating a new one"
  rm -f "$CONN_FILE"
fi
if [[ ! -f $CONN_FILE ]]; then "$GARDEN_ROOT/scripts/relayer.sh" connection >/dev/null; fi
ZONE_CONN=$(jq -r .zone "$CONN_FILE"); SETTLE_CONN=$(jq -r .settle "$CONN_FILE")
log "attestation channel over $ZONE_CONN (garden-zone) / $SETTLE_CONN (garden-settle)"

# --- settlement chain: store, and fix the settlement contract's address -------------------
use_chain garden-settle
SETTLE_CHAIN=$CHAIN_ID; SETTLE_DENOM=$DENOM; SETTLE_GOV=$(gov_address)
SETTLEMENT_CODE=$(store settlement)
CHECKSUM=$(wasmd q wasm code-info "$SETTLEMENT_CODE" "${Q[@]}" | jq -r '.checksum // .data_hash')
[[ $CHECKSUM =~ ^[0-9A-Fa-f]{64}$ ]] || die "no checksum for settlement code $SETTLEMENT_CODE"
# One salt per deployment: a redeploy on the same chain gets a new address.
SALT=$(printf '%s' "garden-settlement-$(date +%s%N)" | sha256sum | cut -c1-32)
SETTLEMENT=$(wasmd q wasm build-address "$CHECKSUM" "$(addr admin)" "$SALT" 2>&1 \
  | grep -o 'wasm1[0-9a-z]*' | head -1)
[[ $SETTLEMENT == wasm1* ]] || die "could not compute the settlement address: $SETTLEMENT"

# --- zone: consortium and gateway ---------------------------------------------------------
use_chain garden-zone
ZONE_GOV=$(gov_address)
log "storing consortium and gateway on $CHAIN_ID"
CONSORTIUM_CODE=$(store consortium)
GATEWAY_CODE=$(store gateway)
MEMBERS_JSON="[]"
for row in $(jq -c '.members[]' "$GARDEN_ROOT/chain-config/founders.json"); do
  a=$(addr "$(jq -r .account <<<"$row")")
  MEMBERS_JSON=$(jq -c --arg a "$a" --argjson r "$row" '. + [{addr: $a, pubkey: $r.pubkey, level: $r.level, weight: $r.weight}]' <<<"$MEMBERS_JSON")
done
CONSORTIUM=$(instantiate "$CONSORTIUM_CODE" garden-consortium \
  "$(jq -nc --argjson m "$MEMBERS_JSON" --arg gov "$ZONE_GOV" '{members: $m, params: null, admin: $gov}')" "$ZONE_GOV")
INIT=$(jq -nc --arg c "$CONSORTIUM" --arg gov "$ZONE_GOV" --arg conn "$ZONE_CONN" --arg port "wasm.$SETTLEMENT" \
  '{consortium: $c, params: null, admin: $gov, route: {connection_id: $conn, counterparty_port: $port}}')
log "instantiating gateway (code $GATEWAY_CODE), route to wasm.$SETTLEMENT"
GATEWAY=$(instantiate "$GATEWAY_CODE" garden-gateway "$INIT" "$ZONE_GOV")
ZONE_CHAIN=$CHAIN_ID

# --- settlement chain: instantiate at the fixed address ------------------------------------
use_chain garden-settle
INIT=$(jq -nc --arg gov "$SETTLE_GOV" --arg denom "$SETTLE_DENOM" --arg conn "$SETTLE_CONN" --arg port "wasm.$GATEWAY" \
  '{consortium: null, denom: $denom, params: null, admin: $gov, route: {connection_id: $conn, counterparty_port: $port}}')
log "instantiating settlement (code $SETTLEMENT_CODE) at $SETTLEMENT"
res=$(zone_tx admin wasm instantiate2 "$SETTLEMENT_CODE" "$INIT" "$SALT" --hex \
  --label garden-settlement --admin "$SETTLE_GOV")
got=$(event_attr "$res" instantiate _contract_address)
[[ $got == "$SETTLEMENT" ]] || die "settlement landed at $got, expected $SETTLEMENT"

# --- the channel ----------------------------------------------------------------------------
CHANNEL=$("$GARDEN_ROOT/scripts/relayer.sh" channel "wasm.$GATEWAY" "wasm.$SETTLEMENT" "$ZONE_CONN")

DEPLOY=$(jq -n --arg zc "$ZONE_CHAIN" --arg sc "$SETTLE_CHAIN" --arg zg "$ZONE_GOV" --arg sg "$SETTLE_GOV" \
  --arg cc "$CONSORTIUM_CODE" --arg ca "$CONSORTIUM" --arg gc "$GATEWAY_CODE" --arg ga "$GATEWAY" \
  --arg stc "$SETTLEMENT_CODE" --arg sa "$SETTLEMENT" --argjson ch "$CHANNEL" \
  --arg zconn "$ZONE_CONN" --arg sconn "$SETTLE_CONN" \
  '{mode: "ibc",
    zone: {chain_id: $zc, governance: $zg, connection: $zconn,
           consortium: {code_id: ($cc | tonumber), address: $ca},
           gateway: {code_id: ($gc | tonumber), address: $ga, channel: $ch.zone}},
    settle: {chain_id: $sc, governance: $sg, connection: $sconn,
             settlement: {code_id: ($stc | tonumber), address: $sa, channel: $ch.settle}}}')
echo "$DEPLOY" > "$GARDEN_NET/deployment-ibc.json"
if [[ $JSON -eq 1 ]]; then echo "$DEPLOY"; else
  log "deployed in IBC mode (written to $GARDEN_NET/deployment-ibc.json):"
  printf '  %-13s consortium  %s\n  %-13s gateway     %s (%s)\n  %-13s settlement  %s (%s)\n' \
    "$ZONE_CHAIN" "$CONSORTIUM" "$ZONE_CHAIN" "$GATEWAY" "$(jq -r .zone <<<"$CHANNEL")" \
    "$SETTLE_CHAIN" "$SETTLEMENT" "$(jq -r .settle <<<"$CHANNEL")"
fi
