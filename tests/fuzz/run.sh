#!/bin/sh
# Runs each fuzz target for a bounded time on a scratch copy of its committed
# seed corpus; any crash fails the run. Usage: run.sh BUILD_DIR SECONDS
set -eu
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
n=0
for src in "$here"/fuzz_*.c; do
  t=${src##*/fuzz_}
  t=${t%.c}
  work=$(mktemp -d)
  cp -r "$here/corpus/$t/." "$work/"
  dict=""
  [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
  echo "fuzz_$t: ${secs}s"
  # shellcheck disable=SC2086
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=0 \
    -artifact_prefix="$work/" $dict "$work" 2>"$work/log" || {
    tail -40 "$work/log"
    echo "fuzz_$t FAILED; crashing input kept in $work" >&2
    exit 1
  }
  rm -rf "$work"
  n=$((n + 1))
done
echo "fuzz: $n passed, 0 failed"
