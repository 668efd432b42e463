#!/usr/bin/env python3
"""What each index of the server's event log costs at 20M events.

Builds an SQLite file with the `events` table of reco serve and 20M events (140k users, 27k
items, skewed popularity), then commits random events the way the server's group-committing
writer does (1,600 per transaction: 16 clients x 100 events, WAL, synchronous=FULL) for 20 s
with the indexes as they are, with a larger page cache, and without the item index.

Usage: python3 bench/sqlite_ingest.py [WORKDIR]   (default /tmp/reco-sqlite-ingest; ~2 GB)
"""

import os
import random
import shutil
import sqlite3
import sys
import time

work = sys.argv[1] if len(sys.argv) > 1 else "/tmp/reco-sqlite-ingest"
os.makedirs(work, exist_ok=True)
base = os.path.join(work, "base.db")

if not os.path.exists(base):
    c = sqlite3.connect(base)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
              "item_id TEXT NOT NULL, kind TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, "
              "ts BIGINT NOT NULL, recommendation TEXT)")
    rng = random.Random(1)
    for b in range(20):
        rows = sorted(("u%d" % rng.randrange(140000), "i%d" % int(27000 * rng.random() ** 3),
                       "view", 1.0, 1700000000 + b) for _ in range(1_000_000))
        c.executemany("INSERT INTO events (user_id, item_id, kind, value, ts) "
                      "VALUES (?, ?, ?, ?, ?)", rows)
        c.commit()
    c.execute("CREATE INDEX events_user ON events (user_id, seq)")
    c.execute("CREATE INDEX events_item ON events (item_id)")
    c.execute("CREATE INDEX events_kind ON events (kind)")
    c.commit()
    c.close()


def ingest(cache_kib, drop):
    db = os.path.join(work, "run.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copy(base, db)
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    if cache_kib:
        c.execute(f"PRAGMA cache_size=-{cache_kib}")
    if drop:
        c.execute(f"DROP INDEX {drop}")
    rng = random.Random(2)
    n, t = 0, time.time()
    while time.time() - t < 20:
        rows = [("u%d" % rng.randrange(1, 140000), "i%d" % rng.randrange(1, 27000), "view", 1.0,
                 1800000000) for _ in range(1600)]
        c.execute("BEGIN")
        c.executemany("INSERT INTO events (user_id, item_id, kind, value, ts) "
                      "VALUES (?, ?, ?, ?, ?)", rows)
        c.execute("COMMIT")
        n += len(rows)
    c.close()
    return n / (time.time() - t)


print("| indexes | page cache | events/s |")
print("| --- | --- | ---: |")
for label, cache, drop in [("user, item, type", 0, None), ("user, item, type", 262144, None),
                           ("user, type", 0, "events_item"), ("user, type", 262144, "events_item")]:
    rate = ingest(cache, drop)
    print(f"| {label} | {'256 MiB' if cache else 'default (2 MiB)'} | {rate:,.0f} |")
