#!/usr/bin/env bash
# The same scores three ways on generated data: `leadscore score`, the
# DuckDB query `leadscore sql --dialect duckdb` prints, and the Spark SQL
# query in Spark's local mode. Prints each run's wall time and peak memory
# and checks that DuckDB's and Spark's numbers equal leadscore's to 1e-9.
#   benches/sql.sh [CONTACTS] [EVENTS] [time|contact]
# Needs the Python packages duckdb and pyspark and a Java runtime (./test.sh
# installs them into target/test-python); data is generated once into
# bench-data/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}
events=${2:-20000000}
order=${3:-time}
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
cat "$dir/events.csv" > /dev/null
/usr/bin/time -f "leadscore score: %e s wall, %M KiB peak" \
  "$bin" score --quiet --model "$model" --contacts "$dir/contacts.csv" --events "$dir/events.csv" \
    --as-of "$as_of" --format csv > "$out/leadscore.csv"
"$bin" sql --model "$model" --dialect duckdb --as-of "$as_of" > "$out/duckdb.sql"
"$bin" sql --model "$model" --dialect spark --as-of "$as_of" > "$out/spark.sql"
/usr/bin/time -f "duckdb (query over the CSV files): %e s wall, %M KiB peak" \
  "$python" benches/sql_engine.py duckdb "$out/duckdb.sql" "$dir" "$out/duckdb.csv"
/usr/bin/time -f "spark local[2] (query over the CSV files): %e s wall, %M KiB peak (driver process)" \
  "$python" benches/sql_engine.py spark "$out/spark.sql" "$dir" "$out/spark.csv"
"$python" benches/sql_engine.py compare "$out/leadscore.csv" "$out/duckdb.csv" "$out/spark.csv"
