#!/usr/bin/env bash
# Log ingest (bench/cmd/loggen): realistic Connections records appended to a
# fresh SQLite log store through the store's own Append.
set -euo pipefail
n=1000000
[[ -n "${BENCH_QUICK:-}" ]] && n=100000
[[ -x "$BENCH_BIN/loggen" ]] || { echo "## Log ingest: bench/cmd/loggen not built"; exit 0; }
out=$(timeout $(( BENCH_SECONDS > 10 ? BENCH_SECONDS : 10 )) "$BENCH_BIN/loggen" -db "$BENCH_WORK/logs.db" -records "$n" -progress 1h 2>&1)
echo "## Log ingest (Tether only: the baselines keep no log)"
echo
echo "\`loggen -records $n\` into a fresh SQLite store:"
echo
echo '```'
echo "$out" | tail -15
echo '```'
