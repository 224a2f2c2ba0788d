# shellcheck shell=bash
# Shared helpers for Garden's scripts: pinned versions, cache locations, logging.
# Sourced, never executed.

set -euo pipefail
# Make failures inside $(...) abort too (bash does not inherit -e there by default).
shopt -s inherit_errexit

GARDEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Pinned tool versions (see ../shared/spec/TOOLCHAIN.md for why these).
WASMD_VERSION="${WASMD_VERSION:-v0.61.14}"
WASMVM_VERSION="${WASMVM_VERSION:-v3.0.7}"
SONIC_VERSION="${SONIC_VERSION:-v1.15.5}"
HERMES_VERSION="${HERMES_VERSION:-1.10.5}"
COSMWASM_CHECK_VERSION="${COSMWASM_CHECK_VERSION:-3.0.10}"
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"
NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-v2.15.3}"

# Built tools are cached by version outside the clone so a second run (and CI on the same
# machine) does not rebuild them.
GARDEN_CACHE="${GARDEN_CACHE:-$HOME/.cache/garden}"
GARDEN_TOOLS="${GARDEN_TOOLS:-$GARDEN_CACHE/tools}"
WASMD_DIR="$GARDEN_TOOLS/wasmd-$WASMD_VERSION"
HERMES_DIR="$GARDEN_TOOLS/hermes-$HERMES_VERSION"
COSMWASM_CHECK_DIR="$GARDEN_TOOLS/cosmwasm-check-$COSMWASM_CHECK_VERSION"
CARGO_FUZZ_DIR="$GARDEN_TOOLS/cargo-fuzz-$CARGO_FUZZ_VERSION"
NATS_SERVER_DIR="$GARDEN_TOOLS/nats-server-$NATS_SERVER_VERSION"

# Local network state lives outside the clone too (it is large and disposable).
GARDEN_NET="${GARDEN_NET:-$GARDEN_CACHE/localnet}"

log()  { printf '\033[1;32m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Puts the cached tools on PATH (and wasmd's shared library on the loader path).
garden_tool_env() {
  export PATH="$WASMD_DIR/bin:$HERMES_DIR/bin:$COSMWASM_CHECK_DIR/bin:$CARGO_FUZZ_DIR/bin:$NATS_SERVER_DIR/bin:$PATH"
  export LD_LIBRARY_PATH="$WASMD_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# The pinned nats-server the tests use (GARDEN_NATS_SERVER overrides it).
nats_server_bin() {
  printf '%s\n' "${GARDEN_NATS_SERVER:-$NATS_SERVER_DIR/bin/nats-server}"
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: run scripts/install-deps.sh first${2:+ ($2)}"
}

# Timing helper: `timed label cmd...` prints how long cmd took.
timed() {
  local label="$1"; shift
  local t0; t0=$(date +%s)
  "$@"
  log "$label took $(( $(date +%s) - t0 )) s"
}
