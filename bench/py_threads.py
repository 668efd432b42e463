#!/usr/bin/env python3
"""Two Python threads calling reco at once against the same calls one after the other.

reco releases the interpreter lock while it fits and recommends, so two threads that each
make many small calls (one user at a time, the shape of a web handler) overlap on two cores.
A batch call already uses every core by itself, so it is the small calls that show the
release. Prints the median wall times of RUNS runs and their ratio (sequential / concurrent:
about 2 on two idle cores when nothing holds the lock, 1 if the lock were held).

Usage: python bench/py_threads.py [--users N] [--items N] [--calls N] [--runs N]
"""

import argparse
import statistics
import threading
import time

import numpy as np

import reco


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, default=27000)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    data = reco.synthetic(f"users={a.users},items={a.items},interactions={a.users * 20},seed=1")
    model = reco.IALS(factors=64, epochs=2).fit(data)
    users = np.array(data.user_ids)

    def work(offset):
        for k in range(a.calls):
            model.recommend(users[(offset + k) % len(users)], n=10)

    def sequential():
        work(0)
        work(a.calls)

    def concurrent():
        t = [threading.Thread(target=work, args=(o,)) for o in (0, a.calls)]
        for x in t:
            x.start()
        for x in t:
            x.join()

    def timed(f):
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    work(0)  # warm caches and the thread pool
    s, c = timed(sequential), timed(concurrent)
    print(f"{2 * a.calls} single-user recommend calls on {a.items} items, iALS 64 factors")
    print(f"one thread after the other: {s:.3f} s; two threads at once: {c:.3f} s; ratio {s / c:.2f}")


if __name__ == "__main__":
    main()
