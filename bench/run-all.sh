#!/usr/bin/env bash
# The one command for issue 7's benchmarks: P1–P5, each measured beside its peer in the same
# run, with the ratios printed at the end. See BENCHMARKS.md.
#
#   bench/run-all.sh           full run (release builds; about 10 minutes on 2 cores)
#   bench/run-all.sh --quick   smoke run for CI: dev builds, tiny samples, a few seconds of
#                              measuring; proves every benchmark still builds and runs
#
# Respects CARGO_TARGET_DIR. Exits non-zero only if a benchmark fails to run, never because a
# target is missed (a miss is a result).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=""
if [[ "${1:-}" == "--quick" ]]; then QUICK="--quick"; fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [[ -n "$QUICK" ]]; then PROFILE="${BENCH_PROFILE:-dev}"; else PROFILE="${BENCH_PROFILE:-release}"; fi
case "$PROFILE" in dev) OUT=debug ;; *) OUT="$PROFILE" ;; esac
export BENCH_BIN_DIR="$TARGET_DIR/$OUT"
export CRITERION_HOME="$TARGET_DIR/criterion-$PROFILE"
LOG="$TARGET_DIR/bench-run.log"
mkdir -p "$TARGET_DIR"
# 1,000 idle connections plus the flood need more than the usual 1,024 descriptors.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

say() { echo "=== $*"; }
{
  say "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
  say "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(rustc --version); profile $PROFILE ${QUICK:-(full run)}"
} | tee "$LOG"

say "building (cargo build --profile $PROFILE)"
cargo build --profile "$PROFILE" -q -p openrouter-auth -p openrouter-auth-sim -p openrouter-auth-bench --bins
# Then the CLI on its own, as `cargo install` builds it: built beside the simulator and bench
# crates, Cargo unifies their dependencies' features into it (27k relocations and 8.4 MB of
# code instead of 15k and 8.0 MB), and P2-P4 would measure a binary no user runs. The last
# build puts its binary in $BENCH_BIN_DIR.
cargo build --profile "$PROFILE" -q -p openrouter-auth --bin openrouter-auth

say "P1: cargo bench -p openrouter-auth-bench --bench p1_parse" | tee -a "$LOG"
if [[ -n "$QUICK" ]]; then
  P1_ARGS=(--warm-up-time 0.2 --measurement-time 0.3 --sample-size 10)
else
  P1_ARGS=()
fi
cargo bench --profile "$PROFILE" -q -p openrouter-auth-bench --bench p1_parse -- "${P1_ARGS[@]}" 2>&1 \
  | grep -v -E '^(Benchmarking|Found|  [0-9]+ \()' | tee -a "$LOG"

for p in p2 p3 p4; do
  say "${p^^}: bench-driver $p $QUICK" | tee -a "$LOG"
  "$BENCH_BIN_DIR/bench-driver" "$p" $QUICK 2>&1 | tee -a "$LOG"
done

say "P5: cargo bench -p openrouter-auth-sim --bench sim_throughput" | tee -a "$LOG"
if [[ -f sim/benches/sim_throughput.rs ]] || grep -q 'sim_throughput' sim/Cargo.toml 2>/dev/null; then
  P5_ARGS=()
  if [[ -n "$QUICK" ]]; then
    export BENCH_QUICK=1
    export OPENROUTER_AUTH_SIM_BENCH_RUNS="${OPENROUTER_AUTH_SIM_BENCH_RUNS:-200}"
  fi
  P5_OUT=$(cargo bench --profile "$PROFILE" -q -p openrouter-auth-sim --bench sim_throughput -- "${P5_ARGS[@]}" 2>&1)
  echo "$P5_OUT" | tee -a "$LOG"
  # The first number printed before "flows/s" (k/M suffixes understood).
  RATE=$(echo "$P5_OUT" | grep -o -i -E '[0-9][0-9.,_]*[[:space:]]*[kKM]?[[:space:]]*flows?/s' | head -1 || true)
  if [[ -n "$RATE" ]]; then
    NUM=$(echo "$RATE" | grep -o -E '^[0-9][0-9.,_]*' | tr -d ',_')
    MUL=1
    if echo "$RATE" | grep -q -E '[kK][[:space:]]*flows?'; then MUL=1000; fi
    if echo "$RATE" | grep -q -E 'M[[:space:]]*flows?'; then MUL=1000000; fi
    FLOWS=$(awk -v n="$NUM" -v m="$MUL" 'BEGIN { printf "%.0f", n * m }')
    MET=$(awk -v f="$FLOWS" 'BEGIN { print (f >= 50000) ? "met" : "MISSED" }')
    # The peer: the same seeds' flows replayed into a bare `Flow` (no world, no checks).
    BARE=$(echo "$P5_OUT" | sed -n -E 's/^P5 summary: .*bare ([0-9.]+) flows\/s, ratio ([0-9.]+).*/\1 \2/p' | head -1)
    if [[ -n "$BARE" ]]; then
      WHAT="checked $FLOWS flows/s, bare ${BARE% *} flows/s, ratio ${BARE#* } (checked / bare)"
    else
      WHAT="checked $FLOWS flows/s, no bare-flow peer in its output"
    fi
    echo "RESULT P5 | simulated whole flows per second (sim_throughput), peer: the bare Flow on the same seeds' inputs | $WHAT | >= 50,000 flows/s checked | $MET" | tee -a "$LOG"
  else
    echo "RESULT P5 | simulated whole flows per second (sim_throughput) | no flows/s line in its output | >= 50,000 flows/s | MISSED" | tee -a "$LOG"
  fi
else
  echo "P5: pending (sim/benches/sim_throughput.rs does not exist yet)" | tee -a "$LOG"
  echo "RESULT P5 | simulated whole flows per second | pending: no sim_throughput bench yet | >= 50,000 flows/s | pending" >> "$LOG"
fi

echo
say "summary (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "| id | what | ratio | target | status |"
echo "|----|------|-------|--------|--------|"
grep '^RESULT ' "$LOG" | sed -e 's/^RESULT /| /' -e 's/$/ |/'
echo "(full log: $LOG)"
