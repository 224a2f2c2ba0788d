#!/usr/bin/env bash
# Installs everything Garden's tests need, from package registries only:
#   - Debian packages: Debian's Rust (wasm contracts via build-std), lld,
#     binaryen (wasm-opt), libclang + protoc (Hermes' build);
#   - wasmd and nats-server, built from the Go module proxy at pinned releases;
#   - Hermes (ibc-relayer-cli), cosmwasm-check and cargo-fuzz, from crates.io.
# Idempotent: built tools are cached by version under $GARDEN_TOOLS and skipped when present.
#
# Usage: scripts/install-deps.sh [--no-apt] [--only NAME] [--skip NAME]
#        NAME: apt | wasmd | nats-server | cosmwasm-check | hermes | cargo-fuzz
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(rustc-web cargo-web rust-web-src lld-22 binaryen
              libclang-dev protobuf-compiler clang pkg-config libssl-dev jq curl ca-certificates)
DO_APT=1
ONLY=""
SKIP=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-apt) DO_APT=0 ;;
    --only) ONLY="${2:?--only needs a name}"; shift ;;
    --skip) SKIP="$SKIP ${2:?--skip needs a name}"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
want() { [[ -z "$ONLY" || "$ONLY" == "$1" ]] && [[ " $SKIP " != *" $1 "* ]]; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then log "apt: all ${#APT_PACKAGES[@]} packages present"; return; fi
  [[ $(id -u) -eq 0 ]] || die "apt packages missing (${missing[*]}) and not root: install them with sudo apt-get install"
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: check network access to Debian mirrors"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
  [[ -x /usr/bin/cargo && -x /usr/bin/rustc ]] || die "Debian's cargo/rustc missing after apt install (cargo-web/rustc-web)"
}

install_wasmd() {
  if [[ -x "$WASMD_DIR/bin/wasmd" && -f "$WASMD_DIR/lib/libwasmvm.x86_64.so" ]]; then
    log "wasmd $WASMD_VERSION: cached in $WASMD_DIR"; return
  fi
  need go "Go is needed to build wasmd"
  log "wasmd $WASMD_VERSION: downloading from the Go module proxy"
  local json dir build
  json=$(go mod download -json "github.com/CosmWasm/wasmd@$WASMD_VERSION") \
    || die "go mod download of wasmd $WASMD_VERSION failed (is the Go module proxy reachable?)"
  dir=$(jq -r .Dir <<<"$json")
  [[ -d "$dir" ]] || die "wasmd module directory not found after download: $dir"
  build="$GARDEN_CACHE/build/wasmd-$WASMD_VERSION"
  rm -rf "$build"; mkdir -p "$build"
  cp -r "$dir/." "$build/"; chmod -R u+w "$build"
  log "wasmd $WASMD_VERSION: building (about 4 min on 2 cores)"
  (
    cd "$build"
    # Old bytedance/sonic does not build on Go >= 1.26 (undefined: GoMapIterator).
    go mod edit -replace "github.com/bytedance/sonic=github.com/bytedance/sonic@$SONIC_VERSION"
    CGO_ENABLED=1 go build -mod=mod -tags netgo -trimpath \
      -ldflags "-checklinkname=0 -X github.com/cosmos/cosmos-sdk/version.Name=wasm \
        -X github.com/cosmos/cosmos-sdk/version.AppName=wasmd \
        -X github.com/cosmos/cosmos-sdk/version.Version=$WASMD_VERSION" \
      -o wasmd ./cmd/wasmd
  ) || die "wasmd build failed (see the Go output above)"
  local so
  so=$(find "$(go env GOMODCACHE)/github.com/!cosm!wasm/wasmvm/v3@$WASMVM_VERSION" -name 'libwasmvm.x86_64.so' | head -1)
  [[ -f "$so" ]] || die "libwasmvm.x86_64.so ($WASMVM_VERSION) not found in the Go module cache"
  mkdir -p "$WASMD_DIR/bin" "$WASMD_DIR/lib"
  install -m 0755 "$build/wasmd" "$WASMD_DIR/bin/wasmd"
  install -m 0644 "$so" "$WASMD_DIR/lib/"
  rm -rf "$build"
  garden_tool_env
  log "wasmd: $(wasmd version 2>&1) installed in $WASMD_DIR"
}

# nats-server at a pinned release (Debian's is older and has no recent JetStream fixes); the
# tests start it themselves through scripts/nats.sh.
install_nats_server() {
  local bin; bin="$NATS_SERVER_DIR/bin/nats-server"
  if [[ -x "$bin" ]]; then log "nats-server $NATS_SERVER_VERSION: cached in $NATS_SERVER_DIR"; return; fi
  need go "Go is needed to build nats-server"
  log "nats-server $NATS_SERVER_VERSION: building from the Go module proxy (about 1 min)"
  mkdir -p "$NATS_SERVER_DIR/bin"
  GOBIN="$NATS_SERVER_DIR/bin" CGO_ENABLED=0 go install -trimpath \
    "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION" \
    || die "go install of nats-server $NATS_SERVER_VERSION failed (is the Go module proxy reachable?)"
  log "nats-server: $("$bin" --version) installed in $NATS_SERVER_DIR"
}

# cargo install into a versioned root with a persistent target dir (rebuilds are incremental).
cargo_install_cached() {
  local crate="$1" version="$2" root="$3" bin="$4"; shift 4
  if [[ -x "$root/bin/$bin" ]]; then log "$crate $version: cached in $root"; return; fi
  log "$crate $version: building from crates.io (several minutes on 2 cores)"
  CARGO_TARGET_DIR="$GARDEN_CACHE/build/target-$crate" \
    cargo install "$crate" --version "$version" --locked --root "$root" "$@" \
    || die "cargo install $crate $version failed (see the cargo output above)"
}

install_hermes() {
  cargo_install_cached ibc-relayer-cli "$HERMES_VERSION" "$HERMES_DIR" hermes --bin hermes
}

install_cosmwasm_check() {
  cargo_install_cached cosmwasm-check "$COSMWASM_CHECK_VERSION" "$COSMWASM_CHECK_DIR" cosmwasm-check
}

install_cargo_fuzz() {
  cargo_install_cached cargo-fuzz "$CARGO_FUZZ_VERSION" "$CARGO_FUZZ_DIR" cargo-fuzz
}

mkdir -p "$GARDEN_TOOLS"
garden_tool_env
if want apt && [[ $DO_APT -eq 1 ]]; then timed "apt" install_apt; fi
want wasmd && timed "wasmd" install_wasmd
want nats-server && timed "nats-server" install_nats_server
want cosmwasm-check && timed "cosmwasm-check" install_cosmwasm_check
want hermes && timed "hermes" install_hermes
want cargo-fuzz && timed "cargo-fuzz" install_cargo_fuzz
log "dependencies ready; tools in $GARDEN_TOOLS"
