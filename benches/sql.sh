#!/usr/bin/env bash
# The same scores three ways on generated data: `leadscore score`, the
# DuckDB query `leadscore sql --dialect duckdb` prints, and the Spark SQL
# query in Spark's local mode. Prints each run's wall time and peak memory,
# leadscore's speed as a multiple of DuckDB's, and checks that DuckDB's and
# Spark's numbers equal leadscore's to 1e-9.
#   benches/sql.sh [CONTACTS] [EVENTS] [time|contact] [duckdb|spark|both]
# Needs the Python packages duckdb and pyspark and a Java runtime (./test.sh
# installs them into target/test-python); data is generated once into
# bench-data/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}
events=${2:-20000000}
order=${3:-time}
engines=${4:-both}
python=${LEADSCORE_PYTHON:-target/test-python/bin/python}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p leadscore
bin=$CARGO_TARGET_DIR/release/leadscore
dir="bench-data/csv-${contacts}-${events}-${order}"
if [[ ! -f "$dir/events.csv" ]]; then
  "$bin" generate --contacts "$contacts" --events "$events" --seed 42 --order "$order" --out "$dir" --format csv
fi
as_of=2026-06-30T00:00:00Z
model=examples/starter-model.toml
out=bench-data/sql-out
mkdir -p "$out"
# Warm files; three runs of leadscore (the median is compared).
cat "$dir/contacts.csv" "$dir/events.csv" > /dev/null
walls=()
for run in 1 2 3; do
  /usr/bin/time -o "$out/leadscore.time" -f "%e %M" \
    "$bin" score --quiet --model "$model" --contacts "$dir/contacts.csv" --events "$dir/events.csv" \
      --as-of "$as_of" --format csv > "$out/leadscore.csv"
  read -r wall peak < "$out/leadscore.time"
  echo "leadscore score (run $run): $wall s wall, $peak KiB peak"
  walls+=("$wall")
done
ls_wall=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n 2p)
cat "$dir/contacts.csv" "$dir/events.csv" > /dev/null
compared=()
if [[ $engines != spark ]]; then
  "$bin" sql --model "$model" --dialect duckdb --as-of "$as_of" > "$out/duckdb.sql"
  /usr/bin/time -o "$out/duckdb.time" -f "%e %M" \
    "$python" benches/sql_engine.py duckdb "$out/duckdb.sql" "$dir" "$out/duckdb.csv"
  read -r db_wall db_peak < "$out/duckdb.time"
  echo "duckdb (query over the CSV files): $db_wall s wall, $db_peak KiB peak"
  awk -v a="$db_wall" -v b="$ls_wall" 'BEGIN { printf "leadscore score (median run) is %.1fx DuckDB\n", a / b }'
  compared+=("$out/duckdb.csv")
fi
if [[ $engines != duckdb ]]; then
  "$bin" sql --model "$model" --dialect spark --as-of "$as_of" > "$out/spark.sql"
  /usr/bin/time -f "spark local[2] (query over the CSV files): %e s wall" \
    "$python" benches/sql_engine.py spark "$out/spark.sql" "$dir" "$out/spark.csv"
  compared+=("$out/spark.csv")
fi
"$python" benches/sql_engine.py compare "$out/leadscore.csv" "${compared[@]}"
