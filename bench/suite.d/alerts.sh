#!/usr/bin/env bash
# Alert cost and latency (bench/cmd/alertbench): the hub's CPU with 1,000
# one-second metric rules (and 100 KQL log rules) against none, side by side,
# and threshold crossing → webhook Fired/Resolved latency.
set -euo pipefail
[[ -x "$BENCH_BIN/alertbench" ]] || { echo "## Alerts: bench/cmd/alertbench not built"; exit 0; }
if [[ -n "${BENCH_QUICK:-}" ]]; then
  args=(-rules 200 -log-rules 0 -reps 1 -measure 5s -warmup 2s -trials 5)
else
  args=(-rules 1000 -log-rules 100 -reps 1 -measure 10s -warmup 3s -trials 10)
fi
cap=$(( BENCH_SECONDS > 30 ? BENCH_SECONDS - 10 : 20 ))
"$BENCH_BIN/alertbench" "${args[@]}" -timeout "${cap}s" -out "$BENCH_WORK/alerts.md" >&2
echo "## Alerts (Tether only: neither baseline evaluates alert rules)"
echo
echo "\`alertbench ${args[*]}\`:"
echo
sed 's/^#/###/' "$BENCH_WORK/alerts.md"
