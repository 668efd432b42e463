#!/usr/bin/env python3
"""Freshness probe for `reco serve` under load (bench/serve_load.sh runs it beside wrk).

Repeatedly: pick a user, read their top-1 item, send a purchase of it, and time from the
acknowledgement to the first recommendation response that no longer contains it (the item
gone, the folded-in history used). Every later response for a probed user is checked for any
item that user purchased: the count of such "seen item returned" responses must be 0.
Prints one JSON line: probes, freshness p50/p99 in ms, seen_violations.

Usage: serve_probe.py URL USER_PREFIX N_USERS SECONDS
"""
import json
import random
import sys
import time
import urllib.request


def call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    base, prefix, n_users, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    rng = random.Random(7)
    bought = {}
    fresh_ms = []
    violations = 0
    checks = 0
    end = time.time() + seconds
    while time.time() < end:
        user = f"{prefix}{rng.randrange(n_users)}"
        top = call(f"{base}/v1/recommend/{user}?n=10")["items"]
        if not top:
            continue
        item = top[0]["id"]
        call(f"{base}/v1/feedback", {"events": [{"user": user, "item": item, "type": "purchase"}]})
        acked = time.perf_counter()
        bought.setdefault(user, set()).add(item)
        while True:
            got = [i["id"] for i in call(f"{base}/v1/recommend/{user}?n=10")["items"]]
            checks += 1
            if bought[user].isdisjoint(got):
                fresh_ms.append((time.perf_counter() - acked) * 1000)
                break
            violations += 1
            if time.perf_counter() - acked > 10:
                break
        # Re-check an earlier probed user: nothing they bought may come back.
        old = rng.choice(list(bought))
        got = [i["id"] for i in call(f"{base}/v1/recommend/{old}?n=10")["items"]]
        checks += 1
        if not bought[old].isdisjoint(got):
            violations += 1
    fresh_ms.sort()
    pct = lambda p: round(fresh_ms[min(len(fresh_ms) - 1, int(p * len(fresh_ms)))], 2) if fresh_ms else None
    print(json.dumps({"probes": len(fresh_ms), "freshness_ms_p50": pct(0.5), "freshness_ms_p99": pct(0.99),
                      "responses_checked": checks, "seen_violations": violations}))


if __name__ == "__main__":
    main()
