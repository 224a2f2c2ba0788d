#!/usr/bin/env bash
# The main job: a local Garden network on embedded defaults, on 127.0.0.1 only.
#   1. installs what is missing (scripts/install-deps.sh; cached tools are skipped),
#   2. builds the contracts (scripts/build-contracts.sh),
#   3. starts the consortium zone and the settlement chain (scripts/localnet.sh),
#   4. deploys in IBC mode with the chain CLI (scripts/deploy-ibc.sh): consortium + gateway on
#      the zone, settlement on the settlement chain, the Garden channel between them, and
#      starts Hermes (scripts/relayer.sh) to relay it; `--single-chain` deploys consortium and
#      settlement both on the zone instead (scripts/deploy-contracts.sh), without Hermes,
#   5. starts three sidecars (an indexer, nodes site-a and site-b) in one private network.
# Everything keeps running in the background; `scripts/run-local.sh stop` stops it.
#
# Usage: scripts/run-local.sh [start|stop|status] [--reset] [--single-chain]   (start is the default)
source "$(dirname "$0")/lib.sh"

cmd="${1:-start}"
case "$cmd" in --*) cmd=start ;; *) [[ $# -gt 0 ]] && shift ;; esac
case "$cmd" in
  stop) "$GARDEN_ROOT/scripts/sidecars.sh" stop; "$GARDEN_ROOT/scripts/relayer.sh" stop
        exec "$GARDEN_ROOT/scripts/localnet.sh" stop ;;
  status) "$GARDEN_ROOT/scripts/sidecars.sh" status; exec "$GARDEN_ROOT/scripts/localnet.sh" status "$@" ;;
  start) ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  *) die "unknown command '$cmd' (start|stop|status)" ;;
esac
RESET=(); IBC=1
for a in "$@"; do
  case "$a" in
    --reset) RESET=(--reset) ;;
    --single-chain) IBC=0 ;;
    *) die "unknown option '$a' (see --help)" ;;
  esac
done

if [[ $IBC -eq 1 ]]; then
  "$GARDEN_ROOT/scripts/install-deps.sh"
  DEPLOYMENT="$GARDEN_NET/deployment-ibc.json"
else
  # Hermes is only needed in IBC mode; skipping it keeps a first run short.
  "$GARDEN_ROOT/scripts/install-deps.sh" --skip hermes
  DEPLOYMENT="$GARDEN_NET/deployment.json"
fi
"$GARDEN_ROOT/scripts/build-contracts.sh"
"$GARDEN_ROOT/scripts/localnet.sh" start --two-chain "${RESET[@]}"
if [[ ${#RESET[@]} -gt 0 ]]; then rm -rf "$GARDEN_NET/hermes"; fi
if [[ -f $DEPLOYMENT && ${#RESET[@]} -eq 0 ]] \
   && curl -sf "http://127.0.0.1:26657/status" >/dev/null; then
  log "contracts already deployed ($DEPLOYMENT); use --reset for a fresh network"
  jq . "$DEPLOYMENT"
elif [[ $IBC -eq 1 ]]; then
  "$GARDEN_ROOT/scripts/relayer.sh" keys
  "$GARDEN_ROOT/scripts/deploy-ibc.sh"
else
  "$GARDEN_ROOT/scripts/deploy-contracts.sh"
fi
if [[ $IBC -eq 1 ]]; then "$GARDEN_ROOT/scripts/relayer.sh" start; fi
"$GARDEN_ROOT/scripts/sidecars.sh" start
log "local network running. Try: scripts/sidecars.sh search site-b | scripts/run-local.sh status | scripts/run-local.sh stop"
