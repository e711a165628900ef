#!/bin/sh
# fuzz.sh - what `make fuzz` runs.
#   fuzz.sh check-clang          installs clang and its libFuzzer runtime when they are missing
#   fuzz.sh run BINDIR TARGET... runs each harness for FUZZ_SECONDS (FUZZ_JOBS at once, niced)
#                                on spec/fuzz/corpus/TARGET + spec/fuzz/seeds/TARGET, then
#                                minimises the corpus to the inputs that add coverage over the seeds
#   fuzz.sh one BINDIR TARGET    one of those runs (used through xargs -P)
#   fuzz.sh merge BINDIR TARGET  only the minimising step, on the kept corpus
set -e
cd "$(dirname "$0")/../.."

check_clang() {
  tmp=$(mktemp -d)
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/t.c"
  if command -v clang >/dev/null 2>&1 &&
     clang -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1; then
    rm -rf "$tmp"
    return 0
  fi
  rm -rf "$tmp"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "fuzz: installing clang and libFuzzer (apt-get install clang libclang-rt-dev)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-dev >/dev/null
}

# minimise BIN TARGET DIR: spec/fuzz/corpus/TARGET becomes the inputs of DIR that reach
# edges the seeds do not (-merge=1; -use_counters=0 counts edges, not hit counts).
minimise() {
  merged=$(dirname "$1")/$2.merged
  rm -rf "$merged"
  mkdir -p "$merged"
  cp spec/fuzz/seeds/"$2"/* "$merged"/ 2>/dev/null || true
  nice -n 10 "$1" -merge=1 -use_counters=0 "$merged" "$3" || true
  for s in spec/fuzz/seeds/"$2"/*; do rm -f "$merged/$(basename "$s")"; done
  for f in spec/fuzz/corpus/"$2"/*; do
    if [ -e "$f" ] && [ ! -e "$merged/$(basename "$f")" ]; then rm -f "$f"; fi
  done
  cp "$merged"/* spec/fuzz/corpus/"$2"/ 2>/dev/null || true
  rm -rf "$merged"
}

run_one() {
  bindir=$1 t=$2
  bin=$bindir/$t corpus=spec/fuzz/corpus/$t seeds=spec/fuzz/seeds/$t log=$bindir/$t.log
  work=$bindir/$t.work
  mkdir -p "$corpus" "$seeds"
  # libFuzzer works on a copy, so spec/fuzz/corpus/ only changes once, at the end.
  rm -rf "$work"
  mkdir -p "$work"
  cp "$corpus"/* "$work"/ 2>/dev/null || true
  dict=""
  case $t in
    json|recording) dict=-dict=spec/fuzz/json.dict ;;
    yaml|config|inputs) dict=-dict=spec/fuzz/yaml.dict ;;
  esac
  status=0
  start=$(date +%s)
  # -detect_leaks=0: Lua's collector frees at its own pace, so the per-input leak check would
  # run LeakSanitizer on most inputs (6x slower); leaks are still checked at exit, after the
  # harness closes its Lua state.
  nice -n 10 "$bin" -max_total_time="${FUZZ_SECONDS:-600}" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
    -print_final_stats=1 -artifact_prefix="$bindir/$t-" $dict "$work" "$seeds" >"$log" 2>&1 ||
    status=$?
  secs=$(($(date +%s) - start))
  minimise "$bin" "$t" "$work" >>"$log" 2>&1
  rm -rf "$work"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | head -n 1)
  echo "fuzz $t: ${execs:-?} runs in $secs s, corpus $(ls "$corpus" | wc -l) files (log: $log)"
  if [ "$status" -ne 0 ]; then
    echo "fuzz $t: FAILED (exit $status); the input is saved as $bindir/$t-*; excerpt:"
    grep -m 5 -E '^(fuzz:|==[0-9]+==ERROR|SUMMARY)' "$log" || tail -n 5 "$log"
    return 1
  fi
}

case $1 in
  check-clang) check_clang ;;
  one) run_one "$2" "$3" ;;
  merge) minimise "$2/$3" "$3" spec/fuzz/corpus/"$3" ;;
  run)
    bindir=$2
    shift 2
    printf '%s\n' "$@" | xargs -P "${FUZZ_JOBS:-2}" -I{} sh spec/fuzz/fuzz.sh one "$bindir" {}
    ;;
  *) echo "usage: $0 check-clang | run BINDIR TARGET... | one|merge BINDIR TARGET" >&2; exit 2 ;;
esac
