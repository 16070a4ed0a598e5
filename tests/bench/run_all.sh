#!/bin/sh
# Runs every benchmark in tests/bench/ one after another and prints their
# tables: bench_s3.py (gomirror on Ceph RGW vs RGW), bench_cached.py (cached
# artifacts vs nginx), bench_rss.py (memory during 200 downloads of 100 MiB
# vs nginx), bench_keepalive.py (more idle keep-alive clients than threads,
# vs nginx), bench_graph.py (`go mod download all` of a 35-module graph vs
# file:// and nginx), bench_auth.py (cached .info with access control off
# and on), bench_regions.py (time to first byte in the second of two
# regions: a version it holds, one the first region holds, one neither
# holds). Benchmarks print; they assert nothing. A script whose
# tools are missing prints the apt-get line and the others still run; the
# exit status is non-zero if any script failed.
#
# Usage: tests/bench/run_all.sh [--binary PATH] [--quick]
#   --binary PATH  the gomirror binary (default build/gomirror)
#   --quick        shorter runs (3 s wrk runs, 3 hyperfine runs) for a smoke check
#
# Each script is bounded by `timeout` (it also bounds itself); the whole run
# takes about 7 minutes (plus ~40 s once to build the graph fixtures).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
binary="$top/build/gomirror"
seconds=10
runs=10
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary=$2; shift 2 ;;
    --binary=*) binary=${1#--binary=}; shift ;;
    --quick) seconds=3; runs=3; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

missing=""
for t in python3 wrk nginx hyperfine go git curl timeout htpasswd; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
    echo "run_all.sh: missing:$missing; install with:" >&2
    echo "  apt-get install -y python3 wrk nginx hyperfine golang-go git curl coreutils apache2-utils" >&2
    echo "  (bench_s3.py also needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd ceph-mgr radosgw ceph-common awscli)" >&2
fi
if [ ! -x "$binary" ]; then
    echo "run_all.sh: $binary not found: cmake -S $top -B $top/build && cmake --build $top/build -j2" >&2
    exit 1
fi

echo "# gomirror benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, binary $binary"
echo "# $(uname -sr); $(nginx -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(hyperfine --version 2>/dev/null); $(go version 2>/dev/null)"
echo

failed=""
run() {
    name=$1; limit=$2; shift 2
    echo "## $name"
    echo
    echo "\$ $*"
    echo
    timeout --kill-after=30 "$limit" "$@"
    rc=$?
    [ $rc -eq 0 ] || { echo "run_all.sh: $name exited with $rc" >&2; failed="$failed $name"; }
    echo
}

run bench_s3.py 600 python3 "$here/bench_s3.py" --binary "$binary" --seconds "$seconds"
run bench_cached.py 600 python3 "$here/bench_cached.py" --binary "$binary" --seconds "$seconds" --info-log
run bench_rss.py 600 python3 "$here/bench_rss.py" --binary "$binary"
run bench_keepalive.py 300 python3 "$here/bench_keepalive.py" --binary "$binary"
run bench_graph.py 1200 python3 "$here/bench_graph.py" --binary "$binary" --runs "$runs"
run bench_auth.py 600 python3 "$here/bench_auth.py" --binary "$binary" --seconds "$seconds"
run bench_regions.py 600 python3 "$here/bench_regions.py" --binary "$binary"

if [ -n "$failed" ]; then
    echo "run_all.sh: failed:$failed" >&2
    exit 1
fi
