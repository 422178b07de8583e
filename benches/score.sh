#!/usr/bin/env bash
# End-to-end benchmark of `leadscore score` on generated data, in both
# event orders: by time across all contacts (as exports come) and by
# contact (blocks of 4 096 contacts, `generate --order contact`).
#   benches/score.sh [CONTACTS] [EVENTS] [csv|ndjson]
# Generates the data once into bench-data/ (git-ignored), then runs the
# scorer three times on each order, alternating, and prints each run's wall
# time, events/s and peak memory, plus the floor: reading the events file
# from the page cache. The two orders' outputs must be byte-identical.
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}
events=${2:-20000000}
format=${3:-csv}
cargo build --release --quiet
bin=target/release/leadscore
for order in time contact; do
  dir="bench-data/${format}-${contacts}-${events}-${order}"
  if [[ ! -f "$dir/events.$format" ]]; then
    /usr/bin/time -f "generate --order $order: %e s wall, %M KiB peak" \
      "$bin" generate --contacts "$contacts" --events "$events" --seed 42 \
        --order "$order" --out "$dir" --format "$format"
  fi
  ls -l "$dir"
  cat "$dir/events.$format" > /dev/null
  floor=$( { /usr/bin/time -f "%e" cat "$dir/events.$format" > /dev/null; } 2>&1 )
  echo "read floor, $order order (cat events file > /dev/null): ${floor} s"
done
for run in 1 2 3; do
  for order in time contact; do
    dir="bench-data/${format}-${contacts}-${events}-${order}"
    /usr/bin/time -f "run $run, $order order: %e s wall, %U s user, %S s sys, %M KiB peak" \
      "$bin" score --timings --model examples/starter-model.toml \
        --contacts "$dir/contacts.$format" --events "$dir/events.$format" \
        --as-of 2026-06-30T00:00:00Z > "$dir/scores.jsonl"
  done
done
cmp "bench-data/${format}-${contacts}-${events}-time/scores.jsonl" \
  "bench-data/${format}-${contacts}-${events}-contact/scores.jsonl"
echo "both orders give byte-identical scores"
