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
# Model changes, each applied and then undone (back to the starter model);
# `model set` redoes only what a change needs (see docs/performance.md).
starter=examples/starter-model.toml
m=bench-data/model-change
mkdir -p "$m"
sed 's/half_life_days = 30 /half_life_days = 21 /' $starter > "$m/decay.toml"
sed 's|when = { property = "url", contains = "/pricing" }|when = { property = "url", starts_with = "/pricing" }|' $starter > "$m/condition-none-move.toml"
sed 's|when = { property = "url", contains = "/pricing" }|when = { property = "url", equals = "/pricing" }|' $starter > "$m/condition-many-move.toml"
awk '/^id = "demo-request"/{d=1} d && /^points = 40/{sub("40","35"); d=0} {print}' $starter > "$m/event-rule-points.toml"
awk '/^id = "title-vp-director"/{d=1} d && /^points = 20/{sub("20","25"); d=0} {print}' $starter > "$m/attribute-rule-points.toml"
sed 's/^min_score = 65/min_score = 60/' $starter > "$m/band-threshold.toml"
{ cat $starter; printf '\n[[rule]]\nid = "liked"\ndimension = "engagement"\non = "social_like"\npoints = 2\nlimit = { count = 3, per_days = 30 }\n'; } > "$m/rule-added-last.toml"
awk '!done && /^\[\[rule\]\]/{print "[[rule]]\nid = \"campaign-visit\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 2\nwhen = { property = \"campaign\", exists = true }\n"; done=1} {print}' $starter > "$m/rule-added-first.toml"
for change in decay condition-none-move condition-many-move event-rule-points attribute-rule-points band-threshold rule-added-last rule-added-first; do
  cmp -s "$m/$change.toml" $starter && { echo "bench bug: $change is the starter model" >&2; exit 1; }
  /usr/bin/time -f "model set, $change: %e s wall, %M KiB peak" "$bin" model set "$m/$change.toml" | head -1
  /usr/bin/time -f "model set, $change undone: %e s wall, %M KiB peak" "$bin" model set $starter | head -1
done
/usr/bin/time -f "scores --format json (all contacts): %e s wall, %M KiB peak" "$bin" scores --format json > bench-data/db-scores.jsonl
/usr/bin/time -f "scores --band hot --top 20: %e s wall, %M KiB peak" "$bin" scores --band hot --top 20 > /dev/null
/usr/bin/time -f "tick --until +30 days: %e s wall, %M KiB peak" "$bin" tick --until 2026-07-30T00:00:00Z
# Built every time (quick when up to date): a stale build refuses newer databases.
cargo build --release --quiet -p leadscore-store --example latency
"$(dirname "$bin")/examples/latency" "$LEADSCORE_DB" 1000
