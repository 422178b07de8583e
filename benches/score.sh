#!/usr/bin/env bash
# End-to-end benchmark of `leadscore score` on generated data.
#   benches/score.sh [CONTACTS] [EVENTS] [csv|ndjson]
# Generates data once into bench-data/ (git-ignored), then runs the scorer
# three times and prints each run's wall time, events/s and peak memory, plus
# the floor: reading the events file from the page cache.
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}
events=${2:-20000000}
format=${3:-csv}
dir="bench-data/${format}-${contacts}-${events}"
cargo build --release --quiet
bin=target/release/leadscore
if [[ ! -f "$dir/events.$format" ]]; then
  /usr/bin/time -f "generate: %e s wall, %M KiB peak" \
    "$bin" generate --contacts "$contacts" --events "$events" --seed 42 --out "$dir" --format "$format"
fi
ls -l "$dir"
cat "$dir/events.$format" > /dev/null
floor=$( { /usr/bin/time -f "%e" cat "$dir/events.$format" > /dev/null; } 2>&1 )
echo "read floor (cat events file > /dev/null): ${floor} s"
for run in 1 2 3; do
  /usr/bin/time -f "run $run: %e s wall, %U s user, %S s sys, %M KiB peak" \
    "$bin" score --timings --model examples/starter-model.toml \
      --contacts "$dir/contacts.$format" --events "$dir/events.$format" \
      --as-of 2026-06-30T00:00:00Z > "$dir/scores.jsonl"
done
