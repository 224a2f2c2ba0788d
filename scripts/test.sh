#!/usr/bin/env bash
# Installs what the tests need and runs every test: unit and multi-test suites (contracts,
# sidecar), the wasm build with cosmwasm-check, then end-to-end tests against a real wasmd
# localnet started here on 127.0.0.1 (and stopped on exit).
#
# Usage: scripts/test.sh [--no-install] [--keep-localnet]
# Environment: CARGO_TARGET_DIR (default ~/.cache/garden/target, kept between runs).
source "$(dirname "$0")/lib.sh"

INSTALL=1; KEEP=0
for a in "$@"; do
  case "$a" in
    --no-install) INSTALL=0 ;;
    --keep-localnet) KEEP=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown option '$a' (see --help)" ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$GARDEN_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build per run: incremental state would only double the target directory on disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cd "$GARDEN_ROOT"
T0=$(date +%s)
declare -a SUMMARY=()
step() {  # step "label" cmd... : runs, times, records
  local label="$1"; shift
  local t0; t0=$(date +%s)
  log "$label"
  "$@"
  SUMMARY+=("$(printf '%-28s %5d s' "$label" $(( $(date +%s) - t0 )))")
}

[[ $INSTALL -eq 1 ]] && step "install dependencies" "$GARDEN_ROOT/scripts/install-deps.sh"
garden_tool_env

# Every crate of the workspace: the sidecar, the e2e harness and each contract.
step "module import cycles" python3 "$GARDEN_ROOT/scripts/check-module-cycles.py"
# The NATS bridge tests start the pinned nats-server through scripts/nats.sh (they skip,
# loudly, only when it is missing: install-deps.sh builds it).
GARDEN_NATS_SERVER="$(nats_server_bin)"
export GARDEN_NATS_SERVER
[[ -x "$GARDEN_NATS_SERVER" ]] || warn "nats-server missing ($GARDEN_NATS_SERVER): the NATS tests will skip"
# The DTN kill -9 chaos runner: 1 000 cycles here (about 2.5 min), 10 000 on demand.
export GARDEN_DTN_CHAOS_CYCLES="${GARDEN_DTN_CHAOS_CYCLES:-1000}"
step "unit + multi-test suites" cargo test --locked --workspace --exclude garden-e2e
step "contracts to wasm" "$GARDEN_ROOT/scripts/build-contracts.sh"
# A short libFuzzer pass over every decoder and validator of network input (corpora kept in
# the cache, so each run starts where the last stopped); longer runs: scripts/fuzz.sh.
step "fuzz (short pass)" "$GARDEN_ROOT/scripts/fuzz.sh" --seconds "${GARDEN_FUZZ_SECONDS:-15}"
# The discovery-plane simulation needs a release build: its clock runs 20x faster than the
# wall clock, which a debug build's crypto cannot follow. Outcomes are checked, never timings.
step "simulation build (release)" cargo build --locked --release -p garden-sim
step "simulation scenarios (CI scale)" "$CARGO_TARGET_DIR/release/garden-sim" --check --quiet \
  "$GARDEN_ROOT"/sim/scenarios/ci/*.toml

stop_all() {
  "$GARDEN_ROOT/scripts/sidecars.sh" stop
  "$GARDEN_ROOT/scripts/relayer.sh" stop
  "$GARDEN_ROOT/scripts/localnet.sh" stop
}
# The sidecar e2e test runs the debug `garden` binary the unit step built.
export GARDEN_BIN="$CARGO_TARGET_DIR/debug/garden"
# The signer e2e tests run the debug `garden-signer` binary the unit step built.
export GARDEN_SIGNER_BIN="$CARGO_TARGET_DIR/debug/garden-signer"
if [[ $KEEP -eq 0 ]]; then trap stop_all EXIT; fi
step "localnet start" "$GARDEN_ROOT/scripts/localnet.sh" start --two-chain --reset
relayer_up() {
  "$GARDEN_ROOT/scripts/relayer.sh" keys
  "$GARDEN_ROOT/scripts/relayer.sh" channel transfer transfer
  "$GARDEN_ROOT/scripts/relayer.sh" start
}
step "hermes channel + start" relayer_up
step "deploy with the chain CLI" "$GARDEN_ROOT/scripts/deploy-contracts.sh"
# IBC mode: consortium + gateway on the zone, settlement on the settlement chain, the Garden
# channel between their wasm ports (Hermes, already running, relays it).
step "deploy IBC mode + channel" "$GARDEN_ROOT/scripts/deploy-ibc.sh"
# e2e tests share the chain's test accounts: run them one at a time so account sequences
# never race.
step "e2e (real wasmd)" cargo test --locked -p garden-e2e -- --test-threads=1

log "timings:"
printf '  %s\n' "${SUMMARY[@]}" >&2
log "all tests passed in $(( $(date +%s) - T0 )) s"
