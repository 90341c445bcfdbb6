#!/usr/bin/env bash
# Thread scaling of the FAFO engine against the sequential engine, with the machine's ceiling
# measured in the same rounds: for each workload and thread count, one
#   zero-producer bench --engine both --threads T --repeat R --ceiling --json
# whose comparison line (speedup, ceiling, speedup_of_ceiling, roots_match) is appended to
# $OUT_DIR/scaling.jsonl and summarised on stdout. Every run's own line goes to
# $OUT_DIR/runs.jsonl.
#
# Usage: bench/scaling.sh [OUT_DIR]   (default: bench-scaling-<date> in the current directory)
# Environment: THREADS (default "1 2 4 8 16", counts above the core count are skipped),
# WORKLOADS (default "transfers erc20 amm mixed"), REPEAT (default 3), ACCOUNTS (200000),
# TXS (100000), BLOCK_TXS (10000), ZERO_PRODUCER (default: built here with cargo).
#
# On a machine that cannot reach crates.io, bring a release binary built elsewhere and point
# ZERO_PRODUCER at it. One workload at all five thread counts takes a few minutes on 16 cores;
# run the workloads as separate calls (WORKLOADS=transfers, ...) where calls are time-limited.
set -euo pipefail

out_dir=${1:-bench-scaling-$(date +%Y%m%d-%H%M%S)}
threads=${THREADS:-1 2 4 8 16}
workloads=${WORKLOADS:-transfers erc20 amm mixed}
repeat=${REPEAT:-3}
cores=$(nproc)

if [[ -z ${ZERO_PRODUCER:-} ]]; then
    cargo build --release --bin zero-producer
    ZERO_PRODUCER=$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/zero-producer
fi
mkdir -p "$out_dir"
failures=()
echo "machine: $cores cores; $(uname -srm); $(date -u +%Y-%m-%dT%H:%MZ)" | tee "$out_dir/machine.txt"

for workload in $workloads; do
    for t in $threads; do
        if ((t > cores)); then
            echo "$workload: skipping $t threads ($cores cores)"
            continue
        fi
        # A failed run (roots that differ exit 1) still prints its lines: keep them, go on, and
        # exit non-zero at the end.
        status=0
        lines=$("$ZERO_PRODUCER" bench --workload "$workload" --engine both --threads "$t" \
            --state qmdb --accounts "${ACCOUNTS:-200000}" --txs "${TXS:-100000}" \
            --block-txs "${BLOCK_TXS:-10000}" --repeat "$repeat" --ceiling --json) || status=$?
        if ((status != 0)); then
            echo "$workload, $t threads: zero-producer exited $status" >&2
            failures+=("$workload/$t")
            [[ -n $lines ]] || continue
        fi
        printf '%s\n' "$lines" | sed '$d' >>"$out_dir/runs.jsonl"
        comparison=$(printf '%s\n' "$lines" | tail -n 1)
        printf '%s\n' "$comparison" >>"$out_dir/scaling.jsonl"
        field() { printf '%s' "$comparison" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }
        printf '%-9s %2s threads: speedup %.2fx  ceiling %.2fx  of ceiling %.2f  fafo %.0f tx/s  sequential %.0f tx/s  roots match %s\n' \
            "$workload" "$t" "$(field speedup)" "$(field ceiling)" "$(field speedup_of_ceiling)" \
            "$(field fafo_tps)" "$(field sequential_tps)" "$(field roots_match)"
    done
done
echo "comparison lines: $out_dir/scaling.jsonl"
if ((${#failures[@]} > 0)); then
    echo "failed: ${failures[*]}" >&2
    exit 1
fi
