#!/usr/bin/env bash
# Builds every contract under contracts/ (crates with crate-type cdylib) to
# artifacts/<name>.wasm, optimised with wasm-opt, writes artifacts/checksums.txt (sha256) and
# runs cosmwasm-check on each artifact.
#
# rustup has no wasm32 target on this machine, so contracts are built with Debian's Rust
# (/usr/bin/cargo, installed by scripts/install-deps.sh) rebuilding std for wasm32
# (-Zbuild-std, enabled by RUSTC_BOOTSTRAP). `-C target-cpu=mvp` keeps the wasm to the MVP
# feature set wasmvm accepts (no bulk-memory, no sign-ext).
#
# cosmwasm-check is told the capabilities wasmd v0.61.14 offers (TOOLCHAIN.md §7): the IBC
# contracts (gateway, settlement) need `stargate`; there is no `cosmwasm_3_0`.
#
# Usage: scripts/build-contracts.sh [contract-name...]   (default: all)
source "$(dirname "$0")/lib.sh"
garden_tool_env

DEB_CARGO=/usr/bin/cargo
DEB_RUSTC=/usr/bin/rustc
[[ -x $DEB_CARGO && -x $DEB_RUSTC ]] || die "Debian's cargo/rustc not found: run scripts/install-deps.sh (packages cargo-web, rustc-web, rust-web-src)"
need wasm-opt "package binaryen"
# Debian's rustc names `rust-lld`, which it does not ship; lld-22 provides the wasm linker.
WASM_LD=$(command -v wasm-ld-22 || command -v wasm-ld || true)
[[ -n $WASM_LD ]] || die "wasm-ld not found: run scripts/install-deps.sh (package lld-22)"
need cosmwasm-check

cd "$GARDEN_ROOT"
if [[ $# -gt 0 ]]; then
  contracts=("$@")
else
  contracts=()
  for toml in contracts/*/Cargo.toml; do
    grep -q 'cdylib' "$toml" && contracts+=("$(basename "$(dirname "$toml")")")
  done
fi
[[ ${#contracts[@]} -gt 0 ]] || die "no contract crates found under contracts/"

# Separate from the native target dir: different compiler, different std.
export CARGO_TARGET_DIR="${GARDEN_WASM_TARGET_DIR:-$GARDEN_CACHE/target-wasm}"
log "building ${contracts[*]} for wasm32 (Debian $($DEB_RUSTC --version | cut -d' ' -f2))"
# One cargo invocation per contract: building two together would unify features, and a
# contract that depends on another with `library` would strip that one's entry points.
for c in "${contracts[@]}"; do
  RUSTC=$DEB_RUSTC RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$WASM_LD" \
  RUSTFLAGS="-C link-arg=--allow-undefined -C target-cpu=mvp" \
    $DEB_CARGO build --locked --profile contract --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort --lib -p "garden-$c" \
    || die "contract build failed for garden-$c (see cargo output above)"
done

mkdir -p artifacts
: > artifacts/checksums.txt.tmp
for c in "${contracts[@]}"; do
  src="$CARGO_TARGET_DIR/wasm32-unknown-unknown/contract/garden_${c}.wasm"
  [[ -f $src ]] || die "expected build output $src is missing"
  out="artifacts/garden_${c}.wasm"
  # -Oz for size; the input is MVP-only so no feature lowering is needed.
  wasm-opt -Oz --strip-debug "$src" -o "$out" || die "wasm-opt failed on $src"
  (cd artifacts && sha256sum "garden_${c}.wasm") >> artifacts/checksums.txt.tmp
  log "$out: $(stat -c %s "$src") bytes built, $(stat -c %s "$out") bytes after wasm-opt"
done
mv artifacts/checksums.txt.tmp artifacts/checksums.txt

WASMD_CAPABILITIES=iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2,ibc2
for c in "${contracts[@]}"; do
  cosmwasm-check --available-capabilities "$WASMD_CAPABILITIES" "artifacts/garden_${c}.wasm" \
    >/tmp/cosmwasm-check.$$ 2>&1 \
    || { cat /tmp/cosmwasm-check.$$ >&2; die "cosmwasm-check rejected artifacts/garden_${c}.wasm"; }
  log "cosmwasm-check: garden_${c}.wasm passes"
done
rm -f /tmp/cosmwasm-check.$$
cat artifacts/checksums.txt
