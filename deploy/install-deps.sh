#!/bin/sh
# Installs the Debian/Ubuntu packages gomirror needs, and only those missing.
# Usage: deploy/install-deps.sh run|test|bench
# Idempotent: prints what it installs, or that nothing was needed.
set -eu

RUN_PKGS="build-essential cmake pkg-config libcivetweb-dev libcurl4-openssl-dev
libssl-dev libxml2-dev libhiredis-dev libjson-c-dev libzip-dev ca-certificates"
TEST_PKGS="golang-go git python3 golang-golang-x-mod-dev clang libclang-rt-14-dev
ceph-mon ceph-osd radosgw ceph-common awscli redis-server haproxy"

# The benchmark scripts in tests/bench (peers, load tools, and Go sources
# for a real module graph).
BENCH_PKGS="wrk nginx hyperfine curl golang-github-spf13-cobra-dev
golang-github-stretchr-testify-dev golang-github-sirupsen-logrus-dev
golang-github-google-uuid-dev golang-github-gorilla-mux-dev
golang-github-pkg-errors-dev"

case "${1:-run}" in
run) want="$RUN_PKGS" ;;
test) want="$RUN_PKGS $TEST_PKGS" ;;
bench) want="$RUN_PKGS $TEST_PKGS $BENCH_PKGS" ;;
*) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
