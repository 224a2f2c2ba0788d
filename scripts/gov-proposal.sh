#!/usr/bin/env bash
# Passes a chain governance (x/gov) proposal on the local zone whose message executes a
# contract as the x/gov module account — how the consortium zone's governance acts on
# Garden's contracts when it is their admin (scripts/deploy-contracts.sh sets that up).
# The validator account (all the local stake) deposits and votes yes; the script waits
# for the end of the voting period (chain-config/params.env) and reports the outcome.
#
# Usage: scripts/gov-proposal.sh exec CONTRACT 'MSG_JSON' [TITLE]
#   CONTRACT may be an address, or `consortium` / `settlement` (from deployment.json), or
#   `gateway` / `ibc-settlement` (from deployment-ibc.json; the latter lives on the settlement
#   chain, whose governance then votes). GARDEN_GOV_CHAIN=garden-settle targets that chain
#   for an address.
# Example:
#   scripts/gov-proposal.sh exec settlement \
#     '{"update_params":{"params":{...}}}' "Longer settlement window"
source "$(dirname "$0")/lib.sh"

[[ ${1:-} == exec && $# -ge 3 ]] || { sed -n '2,13p' "$0"; exit 2; }
CONTRACT="$2"; MSG="$3"; TITLE="${4:-Garden contract action}"
jq -e . >/dev/null 2>&1 <<<"$MSG" || die "MSG_JSON is not valid JSON: $MSG"
GAS_ADJUSTMENT=1.5
source "$GARDEN_ROOT/scripts/zone-cli.sh"
source "$GARDEN_ROOT/chain-config/params.env"
[[ -n ${GARDEN_GOV_CHAIN:-} ]] && use_chain "$GARDEN_GOV_CHAIN"
if [[ $CONTRACT == gateway || $CONTRACT == ibc-settlement ]]; then
  [[ -f $GARDEN_NET/deployment-ibc.json ]] || die "no deployment-ibc.json: run scripts/deploy-ibc.sh first"
  if [[ $CONTRACT == gateway ]]; then
    CONTRACT=$(jq -r '.zone.gateway.address // empty' "$GARDEN_NET/deployment-ibc.json")
  else
    use_chain garden-settle
    CONTRACT=$(jq -r '.settle.settlement.address // empty' "$GARDEN_NET/deployment-ibc.json")
  fi
elif [[ $CONTRACT != wasm1* ]]; then
  [[ -f $GARDEN_NET/deployment.json ]] || die "no deployment.json: run scripts/deploy-contracts.sh first"
  CONTRACT=$(jq -r --arg c "$CONTRACT" '.[$c].address // empty' "$GARDEN_NET/deployment.json")
  [[ -n $CONTRACT ]] || die "deployment.json has no contract named '$2' (consortium|settlement)"
fi
PROP=$(mktemp --suffix .json); trap 'rm -f "$ZONE_ERR" "$PROP"' EXIT

GOV=$(gov_address)
jq -n --arg gov "$GOV" --arg c "$CONTRACT" --argjson msg "$MSG" --arg title "$TITLE" \
  --arg dep "$GOV_MIN_DEPOSIT$DENOM" '{
    messages: [{"@type": "/cosmwasm.wasm.v1.MsgExecuteContract", sender: $gov, contract: $c, msg: $msg, funds: []}],
    metadata: "", deposit: $dep, title: $title, summary: $title, expedited: false}' > "$PROP"

res=$(zone_tx validator gov submit-proposal "$PROP")
ID=$(event_attr "$res" submit_proposal proposal_id)
log "proposal $ID submitted: $TITLE"
zone_tx validator gov vote "$ID" yes >/dev/null
log "validator voted yes; waiting for the voting period ($GOV_VOTING_PERIOD)"

deadline=$(( $(date +%s) + 120 ))
while :; do
  status=$(wasmd q gov proposal "$ID" "${Q[@]}" 2>/dev/null | jq -r '.proposal.status // .status // empty')
  case "$status" in
    PROPOSAL_STATUS_PASSED) log "proposal $ID passed and was executed"; echo "$ID"; exit 0 ;;
    PROPOSAL_STATUS_REJECTED|PROPOSAL_STATUS_FAILED)
      reason=$(wasmd q gov proposal "$ID" "${Q[@]}" 2>/dev/null | jq -r '.proposal.failed_reason // empty')
      die "proposal $ID ended $status${reason:+: $reason}" ;;
  esac
  [[ $(date +%s) -lt $deadline ]] || die "proposal $ID still $status after 120 s"
  sleep 1
done
