#!/usr/bin/env bash
# Passes a chain governance (x/gov) proposal on the local zone whose message executes a
# contract as the x/gov module account — how the consortium zone's governance acts on
# Garden's contracts when it is their admin (scripts/deploy-contracts.sh sets that up).
# The validator account (all the local stake) deposits and votes yes; the script waits
# for the end of the voting period (chain-config/params.env) and reports the outcome.
#
# Usage: scripts/gov-proposal.sh exec CONTRACT 'MSG_JSON' [TITLE]
#   CONTRACT may be an address, or `consortium` / `settlement` (from deployment.json).
# Example:
#   scripts/gov-proposal.sh exec settlement \
#     '{"update_params":{"params":{...}}}' "Longer settlement window"
source "$(dirname "$0")/lib.sh"
garden_tool_env
need wasmd; need jq

[[ ${1:-} == exec && $# -ge 3 ]] || { sed -n '2,13p' "$0"; exit 2; }
CONTRACT="$2"; MSG="$3"; TITLE="${4:-Garden contract action}"
jq -e . >/dev/null 2>&1 <<<"$MSG" || die "MSG_JSON is not valid JSON: $MSG"
source "$GARDEN_ROOT/chain-config/garden-zone.env"
source "$GARDEN_ROOT/chain-config/params.env"
H="$GARDEN_NET/$CHAIN_ID"; NODE="tcp://127.0.0.1:$RPC_PORT"
if [[ $CONTRACT != wasm1* ]]; then
  [[ -f $GARDEN_NET/deployment.json ]] || die "no deployment.json: run scripts/deploy-contracts.sh first"
  CONTRACT=$(jq -r --arg c "$CONTRACT" '.[$c].address // empty' "$GARDEN_NET/deployment.json")
  [[ -n $CONTRACT ]] || die "deployment.json has no contract named '$2' (consortium|settlement)"
fi
Q=(--home "$H" --node "$NODE" --output json)
TX=(--home "$H" --node "$NODE" --chain-id "$CHAIN_ID" --keyring-backend test --output json -y
    --from validator --gas auto --gas-adjustment 1.5 --gas-prices "0$DENOM")
ERR=$(mktemp); PROP=$(mktemp --suffix .json); trap 'rm -f "$ERR" "$PROP"' EXIT

wait_tx() {
  local out="$1" code hash res
  code=$(jq -r '.code // 0' <<<"$out"); [[ $code == 0 ]] || die "refused: $(jq -r .raw_log <<<"$out")"
  hash=$(jq -r .txhash <<<"$out")
  res=$(wasmd q wait-tx "$hash" --timeout 30s "${Q[@]}" 2>"$ERR") || die "tx $hash not committed: $(tail -n 2 "$ERR")"
  code=$(jq -r '.code // 0' <<<"$res"); [[ $code == 0 ]] || die "tx $hash failed: $(jq -r .raw_log <<<"$res")"
  echo "$res"
}

GOV=$(wasmd q auth module-account gov "${Q[@]}" | jq -r '.account.value.address // .account.base_account.address // .account.address')
jq -n --arg gov "$GOV" --arg c "$CONTRACT" --argjson msg "$MSG" --arg title "$TITLE" \
  --arg dep "$GOV_MIN_DEPOSIT$DENOM" '{
    messages: [{"@type": "/cosmwasm.wasm.v1.MsgExecuteContract", sender: $gov, contract: $c, msg: $msg, funds: []}],
    metadata: "", deposit: $dep, title: $title, summary: $title, expedited: false}' > "$PROP"

out=$(wasmd tx gov submit-proposal "$PROP" "${TX[@]}" 2>"$ERR") || die "submit-proposal failed: $(tail -n 2 "$ERR")"
res=$(wait_tx "$out")
ID=$(jq -r '[.events[] | select(.type == "submit_proposal") | .attributes[] | select(.key == "proposal_id") | .value][0] // empty' <<<"$res")
[[ -n $ID ]] || die "no proposal id in the submit-proposal result"
log "proposal $ID submitted: $TITLE"
out=$(wasmd tx gov vote "$ID" yes "${TX[@]}" 2>"$ERR") || die "vote failed: $(tail -n 2 "$ERR")"
wait_tx "$out" >/dev/null
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
