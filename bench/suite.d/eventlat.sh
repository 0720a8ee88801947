#!/usr/bin/env bash
# Connection events at rate (bench/cmd/eventlat, issue 21): disconnect →
# webhook latency and CPU per cycle (hub and eventlat's own driver +
# receiver) over a rate sweep; names the highest rate sustained with p99 ≤
# 50 ms. The full sweep (`eventlat -sweep -duration 10s`, 1,000 … 10,000
# events/s) needs ~4 minutes; with less time this section sweeps fewer rates.
set -euo pipefail
[[ -x "$BENCH_BIN/eventlat" && -x "$BENCH_BIN/tether" ]] || { echo "## Connection events at rate: eventlat or tether not built"; exit 0; }
if [[ -n "${BENCH_QUICK:-}" ]]; then
  args=(-devices 2000 -rates 1000,5000 -duration 5s)
elif (( BENCH_SECONDS >= 300 )); then
  args=(-sweep -duration 10s)
elif (( BENCH_SECONDS >= 150 )); then
  args=(-rates 2000,5000,8000,10000 -duration 10s)
else
  args=(-rates 5000 -duration 10s)
fi
args+=(-sync-probe=false)
"$BENCH_BIN/eventlat" -tether-bin "$BENCH_BIN/tether" "${args[@]}" -timeout "$(( BENCH_SECONDS > 40 ? BENCH_SECONDS - 30 : 10 ))s" \
  -out "$BENCH_WORK/eventlat.md" >&2
echo "## Connection events at rate (Tether only: neither baseline has connection events)"
echo
echo "\`eventlat ${args[*]}\` (driver and webhook receiver in one process beside the hub, on the same cores):"
echo
sed 's/^#/###/' "$BENCH_WORK/eventlat.md"
