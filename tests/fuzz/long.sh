#!/bin/sh
# The long fuzzing run (make fuzz-long): every target for RUNS executions
# (default 10,000,000), two at a time, each starting from its committed seed
# corpus; new inputs that add coverage are merged, minimised (-merge=1),
# back into tests/fuzz/corpus/<target>/ so the next run (and the short runs
# of make test) start from them. Prints one line per target: executions,
# seconds, executions per second, corpus files before and after. Any crash
# fails the run and keeps the crashing input.
# Usage: long.sh BUILD_DIR [RUNS]
set -eu
build=$1
runs=${2:-10000000}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
one() {
  t=$1
  work="$out/$t"
  mkdir -p "$work/corpus"
  cp -r "$here/corpus/$t/." "$work/corpus/"
  dict=""
  [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
  before=$(ls "$here/corpus/$t" | wc -l)
  start=$(date +%s)
  # shellcheck disable=SC2086
  if ! "$build/tests/fuzz/fuzz_$t" -runs="$runs" -print_final_stats=1 \
      -artifact_prefix="$work/" $dict "$work/corpus" >"$work/log" 2>&1; then
    tail -40 "$work/log"
    echo "fuzz_$t FAILED; crashing input kept in $work" >&2
    return 1
  fi
  secs=$(( $(date +%s) - start ))
  # Keep what adds coverage, minimised, in the committed corpus.
  "$build/tests/fuzz/fuzz_$t" -merge=1 "$here/corpus/$t" "$work/corpus" \
    >"$work/merge.log" 2>&1
  after=$(ls "$here/corpus/$t" | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  echo "fuzz_$t: $execs executions in ${secs}s ($(( execs / (secs > 0 ? secs : 1) )) exec/s), corpus $before -> $after files"
}
failed=0
pids=""
targets=""
for src in "$here"/fuzz_*.c; do
  t=${src##*/fuzz_}
  targets="$targets ${t%.c}"
done
set -- $targets
while [ $# -gt 0 ]; do
  one "$1" > "$out/$1.result" 2>&1 & p1=$!
  p2=""
  if [ $# -gt 1 ]; then one "$2" > "$out/$2.result" 2>&1 & p2=$!; fi
  wait "$p1" || failed=1
  [ -z "$p2" ] || wait "$p2" || failed=1
  cat "$out/$1.result"; [ $# -gt 1 ] && cat "$out/$2.result"
  shift; [ $# -gt 0 ] && shift
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz-long: FAILED (outputs in $out)" >&2
  exit 1
fi
rm -rf "$out"
echo "fuzz-long: every target ran $runs executions without a crash"
