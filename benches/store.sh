#!/usr/bin/env bash
# Benchmark of the lead database on generated data:
#   benches/store.sh [CONTACTS] [EVENTS]
# Imports contacts and events into a fresh database (durable commits),
# re-scores everyone after `model set`, lists all scores, and reports the
# database size. Data is generated once into bench-data/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}
events=${2:-20000000}
data="bench-data/csv-${contacts}-${events}"
bin=${LEADSCORE_BIN:-target/release/leadscore}
[[ -n ${LEADSCORE_BIN:-} ]] || cargo build --release --quiet
if [[ ! -f "$data/events.csv" ]]; then
  "$bin" generate --contacts "$contacts" --events "$events" --seed 42 --out "$data"
fi
export LEADSCORE_DB="bench-data/bench-${contacts}-${events}.db"
export LEADSCORE_NOW=2026-06-30T00:00:00Z
rm -f "$LEADSCORE_DB" "$LEADSCORE_DB-wal" "$LEADSCORE_DB-shm"
"$bin" init --model examples/starter-model.toml
/usr/bin/time -f "import contacts: %e s wall, %M KiB peak" "$bin" import contacts "$data/contacts.csv"
/usr/bin/time -f "import events: %e s wall, %M KiB peak" "$bin" import events "$data/events.csv"
ls -l "$LEADSCORE_DB"* | awk '{print $5, $9}'
sed 's/half_life_days = 30 /half_life_days = 21 /' examples/starter-model.toml > bench-data/model-decay.toml
sed 's|when = { property = "url", contains = "/pricing" }|when = { property = "url", starts_with = "/pricing" }|' examples/starter-model.toml > bench-data/model-rule.toml
/usr/bin/time -f "model set, decay changed (stored matches reused): %e s wall, %M KiB peak" "$bin" model set bench-data/model-decay.toml | head -1
/usr/bin/time -f "model set, a rule condition changed (every event re-matched): %e s wall, %M KiB peak" "$bin" model set bench-data/model-rule.toml | head -1
/usr/bin/time -f "scores --format json (all contacts): %e s wall, %M KiB peak" "$bin" scores --format json > bench-data/db-scores.jsonl
/usr/bin/time -f "scores --band hot --top 20: %e s wall, %M KiB peak" "$bin" scores --band hot --top 20 > /dev/null
/usr/bin/time -f "tick --until +30 days: %e s wall, %M KiB peak" "$bin" tick --until 2026-07-30T00:00:00Z
examples=$(dirname "$bin")/examples/latency
[[ -x $examples ]] || cargo build --release --quiet -p leadscore-store --example latency
"$(dirname "$bin")/examples/latency" "$LEADSCORE_DB" 1000
