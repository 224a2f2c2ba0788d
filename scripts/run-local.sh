#!/usr/bin/env bash
# The main job: a local Garden network on embedded defaults, on 127.0.0.1 only.
#   1. installs what is missing (scripts/install-deps.sh; cached tools are skipped),
#   2. builds the contracts (scripts/build-contracts.sh),
#   3. starts the consortium zone and the settlement chain (scripts/localnet.sh),
#   4. deploys the consortium and settlement contracts with the chain CLI,
#   5. starts three sidecars (an indexer, nodes site-a and site-b) in one private network.
# Everything keeps running in the background; `scripts/run-local.sh stop` stops it.
#
# Usage: scripts/run-local.sh [start|stop|status] [--reset]   (start is the default)
source "$(dirname "$0")/lib.sh"

cmd="${1:-start}"
case "$cmd" in --*) cmd=start ;; *) [[ $# -gt 0 ]] && shift ;; esac
case "$cmd" in
  stop) "$GARDEN_ROOT/scripts/sidecars.sh" stop; exec "$GARDEN_ROOT/scripts/localnet.sh" stop ;;
  status) "$GARDEN_ROOT/scripts/sidecars.sh" status; exec "$GARDEN_ROOT/scripts/localnet.sh" status "$@" ;;
  start) ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  *) die "unknown command '$cmd' (start|stop|status)" ;;
esac
RESET=()
for a in "$@"; do
  case "$a" in --reset) RESET=(--reset) ;; *) die "unknown option '$a' (see --help)" ;; esac
done

# Hermes is only needed by the IBC tests; skipping it keeps a first run short.
"$GARDEN_ROOT/scripts/install-deps.sh" --skip hermes
"$GARDEN_ROOT/scripts/build-contracts.sh"
"$GARDEN_ROOT/scripts/localnet.sh" start --two-chain "${RESET[@]}"
if [[ -f $GARDEN_NET/deployment.json && ${#RESET[@]} -eq 0 ]] \
   && curl -sf "http://127.0.0.1:26657/status" >/dev/null; then
  log "contracts already deployed ($GARDEN_NET/deployment.json); use --reset for a fresh network"
  jq . "$GARDEN_NET/deployment.json"
else
  "$GARDEN_ROOT/scripts/deploy-contracts.sh"
fi
"$GARDEN_ROOT/scripts/sidecars.sh" start
log "local network running. Try: scripts/sidecars.sh search site-b | scripts/run-local.sh status | scripts/run-local.sh stop"
