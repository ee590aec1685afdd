#!/usr/bin/env bash
# Developer-only: h2spec (RFC 9113 / RFC 7541 conformance) against kino, over TLS and over h2c.
#
#   bash dev/h2spec.sh                  # builds what is missing, prints both summaries
#   KINO_BIN=path/to/kino bash dev/h2spec.sh
#
# h2spec is built from its Go source with Debian's Go packages, offline: GO111MODULE=off and a
# GOPATH of the source plus /usr/share/gocode, where the golang-*-dev packages put its three
# imports (fatih/color, spf13/cobra, golang.org/x/net). Nothing is downloaded but apt packages.
#
#   H2SPEC_SRC   a checkout of summerwind/h2spec     (default /var/tmp/h2spec-src)
#   H2SPEC       an h2spec binary to use instead     (default /var/tmp/h2spec-bin/h2spec)
#   KINO_BIN     the kino binary                     (default: release, else debug, else built)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
H2SPEC_SRC="${H2SPEC_SRC:-/var/tmp/h2spec-src}"
H2SPEC="${H2SPEC:-/var/tmp/h2spec-bin/h2spec}"

# --- h2spec ----------------------------------------------------------------------------
if [ ! -x "$H2SPEC" ]; then
  if [ ! -f "$H2SPEC_SRC/cmd/h2spec/h2spec.go" ]; then
    echo "h2spec is not built and its source is not at $H2SPEC_SRC (H2SPEC_SRC):" >&2
    echo "put a checkout of summerwind/h2spec there (git archive of it is enough)." >&2
    exit 1
  fi
  packages=(golang-go golang-github-fatih-color-dev golang-github-spf13-cobra-dev golang-golang-x-net-dev)
  if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "as root: apt-get install ${packages[*]}" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  gopath="$(mktemp -d)"
  mkdir -p "$gopath/src/github.com/summerwind"
  cp -a "$H2SPEC_SRC" "$gopath/src/github.com/summerwind/h2spec"
  mkdir -p "$(dirname "$H2SPEC")"
  (cd "$gopath/src/github.com/summerwind/h2spec" &&
    GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOPROXY=off GOFLAGS= \
      GOCACHE="${GOCACHE:-/var/tmp/h2spec-gocache}" go build -o "$H2SPEC" ./cmd/h2spec)
  rm -rf "$gopath"
  echo "built $H2SPEC" >&2
fi

# --- kino on free ports ------------------------------------------------------------------
if [ -z "${KINO_BIN:-}" ]; then
  for profile in release debug; do
    if [ -x "$CARGO_TARGET_DIR/$profile/kino" ]; then KINO_BIN="$CARGO_TARGET_DIR/$profile/kino"; break; fi
  done
fi
if [ -z "${KINO_BIN:-}" ]; then
  cargo build --bin kino
  KINO_BIN="$CARGO_TARGET_DIR/debug/kino"
fi
work="$(mktemp -d)"
kino_pid=""
cleanup() { [ -n "$kino_pid" ] && kill "$kino_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p "$work/media"
# Port 0 for both listeners; the start-up banner (a JSON log line) says which ports they got.
# The rate limits are off: h2spec opens ~150 connections in a few seconds from one address.
(cd "$work" && exec env KINO_LOG_FORMAT=json KINO_LOG_FILTER=info KINO_MEDIA_DIRS="$work/media" \
  KINO_SECRET=h2spec-run-secret-that-is-long-enough KINO_RATE_LIMIT_ENABLED=false \
  "$(realpath "$KINO_BIN")" serve --http-addr 127.0.0.1:0 --https-addr 127.0.0.1:0 >"$work/kino.log" 2>&1) &
kino_pid=$!
http_port="" https_port=""
for _ in $(seq 100); do
  http_port="$(grep -o '"http":"http://127.0.0.1:[0-9]*"' "$work/kino.log" | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)"
  https_port="$(grep -o '"https":"https://127.0.0.1:[0-9]*"' "$work/kino.log" | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)"
  [ -n "$http_port" ] && [ -n "$https_port" ] && break
  sleep 0.1
done
if [ -z "$http_port" ] || [ -z "$https_port" ]; then
  echo "kino did not start:" >&2
  cat "$work/kino.log" >&2
  exit 1
fi
echo "kino $KINO_BIN: h2c on $http_port, TLS on $https_port"

# --- the runs ------------------------------------------------------------------------------
status=0
run() {
  local name="$1"; shift
  echo
  echo "== h2spec $name: $H2SPEC $*"
  "$H2SPEC" "$@" >"$work/$name.txt" 2>&1 || status=1
  # The failures with the count line after them, or the count line alone.
  if grep -q '^Failures:' "$work/$name.txt"; then
    sed -n '/^Failures:/,$p' "$work/$name.txt"
  else
    grep -E '^[0-9]+ tests, ' "$work/$name.txt" | tail -1
  fi
}
run tls -t -k -h localhost -p "$https_port"
run h2c -h localhost -p "$http_port"
exit "$status"
