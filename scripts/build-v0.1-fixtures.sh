#!/usr/bin/env bash
# Rebuilds the v0.1 contract artifacts the migration e2e test deploys before migrating them
# (tests/fixtures/v0.1/garden_{consortium,settlement}.wasm.gz, with sha256 in checksums.txt).
#
# v0.1 is commit 26a6e9c (the last main before the v0.2 contracts). The artifacts are
# committed so that CI's cold run does not build a second copy of the contracts (~90 s);
# this script documents and reproduces them: it checks out that commit in a temporary git
# worktree, builds it with its own scripts/build-contracts.sh, gzips the artifacts (wasmd
# stores gzipped wasm as is) and records their checksums.
#
# Usage: scripts/build-v0.1-fixtures.sh
source "$(dirname "$0")/lib.sh"

V01_COMMIT=26a6e9c
OUT="$GARDEN_ROOT/tests/fixtures/v0.1"
TMP=$(mktemp -d)
cleanup() { git -C "$GARDEN_ROOT" worktree remove --force "$TMP/src" >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT

git -C "$GARDEN_ROOT" worktree add --detach "$TMP/src" "$V01_COMMIT" >/dev/null \
  || die "cannot check out v0.1 ($V01_COMMIT): is this a full clone?"
log "building the v0.1 contracts of $V01_COMMIT"
GARDEN_WASM_TARGET_DIR="${GARDEN_WASM_TARGET_DIR:-$GARDEN_CACHE/target-wasm}-v0.1" \
  bash "$TMP/src/scripts/build-contracts.sh" >&2
mkdir -p "$OUT"
for c in consortium settlement; do
  gzip -9 -n -c "$TMP/src/artifacts/garden_$c.wasm" > "$OUT/garden_$c.wasm.gz"
done
(cd "$OUT" && sha256sum garden_consortium.wasm.gz garden_settlement.wasm.gz > checksums.txt)
log "wrote $OUT:"
cat "$OUT/checksums.txt"
