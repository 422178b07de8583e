#!/usr/bin/env python3
"""Which B-trees one transaction of single events writes, page by page.

Usage: benches/wal_pages.py LEADSCORE_BIN DB EVENTS [sequential|spread]

Copies DB (a lead database, e.g. one made by benches/store.sh) to DB.pages,
imports EVENTS new events of random existing contacts into the copy with
`leadscore import events` (one transaction, the service's storing path),
keeps the write-ahead log from being copied back (a second connection stays
open), then reads the log's frames and names the B-tree of each page with
SQLite's dbstat. Event ids are `pages-N` (sorting together: the cheap case)
or, with `spread`, spread over the ids already stored (the case of random
ids such as UUIDs). Prints pages per event by B-tree: what each single
event costs the disk (each page is written again by the checkpoint).
"""
import collections
import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import time

binary, src, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
spread = len(sys.argv) > 4 and sys.argv[4] == "spread"
db = src + ".pages"
shutil.copy(src, db)
for ext in ("-wal", "-shm", "-inbox"):
    if os.path.exists(db + ext):
        os.remove(db + ext)
con = sqlite3.connect(db)
contacts = [r[0] for r in con.execute("SELECT ext_id FROM contacts")]
ids = [r[0] for r in con.execute("SELECT id FROM events ORDER BY random() LIMIT ?", (n,))]
last = con.execute("SELECT max(ts) FROM events").fetchone()[0] or time.time_ns()
rng = random.Random(n)
path = db + ".ndjson"
with open(path, "w") as f:
    for i in range(n):
        eid = f"{ids[i % len(ids)]}-pages{i}" if spread and ids else f"pages-{i}"
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1e9 + 60 + i))
        f.write(json.dumps({"id": eid, "contact_id": rng.choice(contacts), "type": "page_view",
                            "timestamp": at, "properties": {"url": "/pricing"}}) + "\n")
subprocess.run([binary, "import", "--db", db, "events", path], check=True)
log = open(db + "-wal", "rb").read()
page_size = struct.unpack(">I", log[8:12])[0]
pages, commits, at = [], 0, 32
while at + 24 + page_size <= len(log):
    page, commit = struct.unpack(">II", log[at:at + 8])
    pages.append(page)
    commits += commit != 0
    at += 24 + page_size
names = {p: (name, kind) for p, name, kind in con.execute("SELECT pageno, name, pagetype FROM dbstat")}
distinct = set(pages)
print(f"{n} events, {commits} commit(s), {len(pages)} log frames of {page_size} bytes: "
      f"{len(pages) * page_size / n / 1024:.1f} KiB and {len(distinct) / n:.2f} pages per event")
by = collections.Counter(names.get(p, ("?", "?")) for p in distinct)
for (name, kind), count in by.most_common():
    print(f"  {name} ({kind}): {count} pages, {count / n:.2f} per event")
con.close()
for ext in ("", "-wal", "-shm", ".ndjson"):
    if os.path.exists(db + ext):
        os.remove(db + ext)
