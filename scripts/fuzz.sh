#!/usr/bin/env bash
# Fuzzes every decoder and validator of network input (sidecar/fuzz: record, heartbeat,
# membership, search, attestation_batch, resource_mutation, dtn_link, booking_step,
# delegation) with cargo-fuzz/libFuzzer, each for a time budget.
# libFuzzer needs unstable rustc flags: on the stable toolchain they are enabled with
# RUSTC_BOOTSTRAP=1. Corpora persist in $GARDEN_CACHE/fuzz/corpus/<target>; a crash stops the
# run with the reproducer's path (sidecar/fuzz/artifacts/<target>/).
#
# Usage: scripts/fuzz.sh [--seconds N] [TARGET...]   (default: 60 s each, every target)
# CI runs a short pass: scripts/fuzz.sh --seconds 20
source "$(dirname "$0")/lib.sh"

SECONDS_EACH=60
TARGETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SECONDS_EACH="${2:?--seconds needs a number}"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done
garden_tool_env
need cargo-fuzz "scripts/install-deps.sh --only cargo-fuzz"
cd "$GARDEN_ROOT/sidecar/fuzz"
[[ ${#TARGETS[@]} -gt 0 ]] || mapfile -t TARGETS < <(cargo fuzz list)

export RUSTC_BOOTSTRAP=1
# Own target dir: every crate is built with libFuzzer's instrumentation.
export CARGO_TARGET_DIR="$GARDEN_CACHE/target-fuzz"
# Sanitizer none: the project's crates forbid unsafe code; what the fuzzer hunts is panics,
# overflows (checked in this profile) and unbounded allocations (-rss_limit_mb, -malloc_limit_mb).
FLAGS=(--sanitizer none --release --debug-assertions)
log "fuzz: building ${#TARGETS[@]} targets"
cargo fuzz build "${FLAGS[@]}" || die "cannot build the fuzz targets (see the cargo output above)"
for t in "${TARGETS[@]}"; do
  corpus="$GARDEN_CACHE/fuzz/corpus/$t"
  mkdir -p "$corpus"
  log "fuzz: $t for ${SECONDS_EACH} s (corpus $corpus)"
  out=$(cargo fuzz run "${FLAGS[@]}" "$t" "$corpus" -- \
        -max_total_time="$SECONDS_EACH" -max_len=16384 -rss_limit_mb=1024 -malloc_limit_mb=256 \
        -print_final_stats=1 2>&1) \
    || { printf '%s\n' "$out" | tail -40 >&2; die "fuzz target $t failed (reproducer under sidecar/fuzz/artifacts/$t/)"; }
  runs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
  cov=$(printf '%s\n' "$out" | grep -o 'cov: [0-9]*' | tail -1)
  printf '%-20s %10s runs in %4d s, %s, corpus %d inputs\n' "$t" "${runs:-?}" "$SECONDS_EACH" \
    "${cov:-cov: ?}" "$(ls "$corpus" | wc -l)"
done
