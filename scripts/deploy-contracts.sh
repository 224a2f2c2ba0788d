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
JSON=0; [[ ${1:-} == --json ]] && JSON=1
source "$GARDEN_ROOT/scripts/zone-cli.sh"
trap 'rm -f "$ZONE_ERR"' EXIT

addr() { wasmd keys show "$1" -a --keyring-backend test --home "$H"; }

store() {
  local wasm="$GARDEN_ROOT/artifacts/garden_$1.wasm" res
  [[ -f $wasm ]] || die "$wasm missing: run scripts/build-contracts.sh"
  res=$(zone_tx admin wasm store "$wasm")
  event_attr "$res" store_code code_id
}

instantiate() {  # code_id label msg -> address
  local res
  res=$(zone_tx admin wasm instantiate "$1" "$3" --label "$2" --admin "$GOV")
  event_attr "$res" instantiate _contract_address
}

GOV=$(gov_address)

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
