"""benches/sql.sh's engine side.
  sql_engine.py duckdb|spark QUERY.sql DATA_DIR OUT.csv: runs the script over
      DATA_DIR/contacts.csv and DATA_DIR/events.csv (all columns text), writes
      the result, prints the query's own time.
  sql_engine.py compare LEADSCORE.csv OTHER.csv...: every number equal to
      1e-9 (relative above 1), every other field exactly."""
import csv
import sys
import time


def statements(path):
    return [s for s in open(path, encoding="utf-8").read().split(";\n") if s.strip()]


def duckdb_run(query, data, out):
    import duckdb

    con = duckdb.connect()
    for t in ("contacts", "events"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_csv('{data}/{t}.csv', all_varchar = true, header = true)")
    *setup, last = statements(query)
    for s in setup:
        con.execute(s)
    start = time.time()
    con.execute(f"COPY ({last}) TO '{out}' (HEADER, DELIMITER ',')")
    print(f"  duckdb query: {time.time() - start:.1f} s", file=sys.stderr)


def spark_run(query, data, out):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]").appName("leadscore-bench")
        .config("spark.ui.enabled", "false").config("spark.driver.memory", "8g")
        .config("spark.sql.shuffle.partitions", "16").getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for t in ("contacts", "events"):
        spark.read.csv(f"{data}/{t}.csv", header=True).createOrReplaceTempView(t)
    *setup, last = statements(query)
    for s in setup:
        spark.sql(s)
    start = time.time()
    rows = spark.sql(last).collect()
    print(f"  spark query: {time.time() - start:.1f} s", file=sys.stderr)
    # The JVM is the driver and, in local mode, the executors: its peak
    # resident memory is the run's (the Python process is small).
    jvm = spark.sparkContext._gateway.proc.pid
    with open(f"/proc/{jvm}/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"  spark JVM peak resident memory: {peak} KiB", file=sys.stderr)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rows[0].__fields__ if rows else [])
        for r in rows:
            w.writerow(["" if v is None else str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, float) else v for v in r])
    spark.stop()


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], {r[0]: r for r in rows[1:]}


def compare(base, others):
    head, want = load(base)
    for other in others:
        h, got = load(other)
        assert h == head, (other, h, head)
        assert len(got) == len(want), (other, len(got), len(want))
        bad = 0
        for k, w in want.items():
            g = got[k]
            for a, b in zip(g, w):
                try:
                    same = abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
                except ValueError:
                    same = a == b
                bad += not same
        print(f"{other}: {len(got)} contacts, {bad} differing values")
        if bad:
            sys.exit(1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "compare":
        compare(sys.argv[2], sys.argv[3:])
    else:
        {"duckdb": duckdb_run, "spark": spark_run}[cmd](*sys.argv[2:5])
