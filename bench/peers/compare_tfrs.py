"""MovieLens-100K, TensorFlow Recommenders' basic-retrieval set-up, side by side with reco's
two-tower model on the same random 80/20 split files.

Usage:
  python bench/peers/compare_tfrs.py [--runs 3] [--reco ./target/release/reco]
        [--workdir /tmp/reco-tfrs] [--tf-python ~/.cache/reco/tf-venv/bin/python]

TFRS (run in its own virtualenv, bench/peers/setup_tf.sh; TF_USE_LEGACY_KERAS=1 because TFRS
needs Keras 2): the tutorial's model — 32-d user and movie id embeddings, in-batch softmax
(tfrs.tasks.Retrieval), Adagrad lr 0.1, batch 8192, 3 epochs — and the same model with Adam and
20 epochs of batch 512.

reco: `two-tower` with 32-d id towers (embedding 32, one 32-unit layer, no metadata, no recent
items), in-batch softmax without and with log-Q correction.

The metric is TFRS's FactorizedTopK top-100 accuracy: the share of test (user, item) pairs whose
item is among the 100 best-scored items of the whole catalogue for that user, training items
not excluded. It is computed here from each side's exported user and item vectors, the same code
for both. Fit time is the median of N runs; both sides use both cores.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd

TFRS_CODE = r'''
import json, os, sys, time
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, pandas as pd, tensorflow as tf, tensorflow_recommenders as tfrs
train_csv, items_csv, out, optimizer, epochs, batch, seed = sys.argv[1:8]
tf.random.set_seed(int(seed))
tr = pd.read_csv(train_csv, dtype={"user": str, "item": str})
items = pd.read_csv(items_csv, dtype={"item": str})["item"].tolist()
users = sorted(tr["user"].unique())
ds = tf.data.Dataset.from_tensor_slices({"user": tr["user"].values, "item": tr["item"].values})
ds = ds.shuffle(len(tr), seed=int(seed), reshuffle_each_iteration=True)
emb = 32
user_model = tf.keras.Sequential([tf.keras.layers.StringLookup(vocabulary=users, mask_token=None),
                                  tf.keras.layers.Embedding(len(users) + 1, emb)])
item_model = tf.keras.Sequential([tf.keras.layers.StringLookup(vocabulary=items, mask_token=None),
                                  tf.keras.layers.Embedding(len(items) + 1, emb)])
class M(tfrs.Model):
    def __init__(self):
        super().__init__()
        self.u, self.i = user_model, item_model
        self.task = tfrs.tasks.Retrieval()
    def compute_loss(self, f, training=False):
        return self.task(self.u(f["user"]), self.i(f["item"]))
m = M()
opt = tf.keras.optimizers.Adagrad(0.1) if optimizer == "adagrad" else tf.keras.optimizers.Adam(0.001)
m.compile(optimizer=opt)
t0 = time.perf_counter()
m.fit(ds.batch(int(batch)).cache(), epochs=int(epochs), verbose=0)
fit = time.perf_counter() - t0
U = user_model(np.array(users)).numpy()
I = item_model(np.array(items)).numpy()
np.save(out + "_users.npy", U); np.save(out + "_items.npy", I)
json.dump({"users": users, "items": items, "fit": fit, "examples": len(tr) * int(epochs)}, open(out + ".json", "w"))
'''


def top100_accuracy(users, U, items, I, test):
    """Share of test pairs whose item is in the user's top 100 over the whole catalogue."""
    uix = {u: n for n, u in enumerate(users)}
    iix = {i: n for n, i in enumerate(items)}
    hits = 0
    for u, grp in test.groupby("user"):
        if u not in uix:
            continue
        s = I @ U[uix[u]]
        top = set(np.argpartition(-s, 100)[:100].tolist())
        hits += sum(1 for i in grp["item"] if i in iix and iix[i] in top)
    return hits / len(test)


def read_tsv(path):
    ids, vecs = [], []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            ids.append(parts[0])
            vecs.append([float(x) for x in parts[1:]])
    return ids, np.array(vecs, dtype=np.float32)


def reco_side(reco, d, spec, work, seed):
    # reco writes into new directories only: start each run from an empty one.
    shutil.rmtree(work, ignore_errors=True)
    art = os.path.join(work, "model")
    t0 = time.perf_counter()
    subprocess.run([reco, "train", "--data", os.path.join(d, "train.csv"), "--threshold", "1",
                    "--model", json.dumps(spec), "--seed", str(seed), "--out", art], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    subprocess.run([reco, "export-vectors", "--model", art, "--out", os.path.join(work, "vec")],
                   check=True, capture_output=True)
    users, U = read_tsv(os.path.join(work, "vec", "users.tsv"))
    items, I = read_tsv(os.path.join(work, "vec", "items.tsv"))
    return users, U, items, I, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reco", default="./target/release/reco")
    ap.add_argument("--workdir", default="/tmp/reco-tfrs")
    ap.add_argument("--tf-python", default=os.path.expanduser("~/.cache/reco/tf-venv/bin/python"))
    args = ap.parse_args()
    d = os.path.join(args.workdir, "holdout")
    os.makedirs(args.workdir, exist_ok=True)
    if not os.path.exists(os.path.join(d, "train.csv")):
        subprocess.run([args.reco, "data", "split", "--data", "data/ml-100k", "--protocol", "holdout:0.2",
                        "--seed", "42", "--out", d], check=True, capture_output=True)
    tr = pd.read_csv(os.path.join(d, "train.csv"), dtype={"user": str, "item": str})
    te = pd.read_csv(os.path.join(d, "test.csv"), dtype={"user": str, "item": str})
    items_csv = os.path.join(args.workdir, "items.csv")
    pd.DataFrame({"item": sorted(set(tr["item"]) | set(te["item"]))}).to_csv(items_csv, index=False)
    script = os.path.join(args.workdir, "tfrs_run.py")
    with open(script, "w") as f:
        f.write(TFRS_CODE)

    print("| system | set-up | top-100 accuracy | fit s (median) | examples/s |")
    print("|---|---|---|---|---|")
    for label, opt, epochs, batch in [("tutorial: Adagrad 0.1, batch 8192, 3 epochs", "adagrad", 3, 8192),
                                      ("Adam 0.001, batch 512, 20 epochs", "adam", 20, 512)]:
        accs, fits, rate = [], [], 0.0
        for r in range(args.runs):
            out = os.path.join(args.workdir, f"tfrs_{opt}_{r}")
            subprocess.run([args.tf_python, script, os.path.join(d, "train.csv"), items_csv, out, opt,
                            str(epochs), str(batch), str(42 + r)], check=True, capture_output=True)
            meta = json.load(open(out + ".json"))
            U, I = np.load(out + "_users.npy"), np.load(out + "_items.npy")
            accs.append(top100_accuracy(meta["users"], U, meta["items"], I, te))
            fits.append(meta["fit"])
            rate = meta["examples"] / meta["fit"]
        print(f"| TFRS 0.7.7 (TF 2.21) | {label} | {statistics.mean(accs):.4f} (runs {', '.join(f'{a:.4f}' for a in accs)}) | {statistics.median(fits):.2f} | {rate:,.0f} |", flush=True)

    common = {"model": "two-tower", "loss": "softmax", "embedding_dim": 32, "layers": [32], "user_fields": [],
              "item_fields": [], "recent_items": 0}
    for label, extra in [("batch 512, 20 epochs, no log-Q", {"logq": False}),
                         ("batch 512, 20 epochs, log-Q", {"logq": True}),
                         ("batch 8192, 3 epochs (TFRS tutorial schedule), no log-Q", {"logq": False, "batch_size": 8192, "epochs": 3, "learning_rate": 0.01})]:
        spec = dict(common, **extra)
        accs, fits = [], []
        for r in range(args.runs):
            work = os.path.join(args.workdir, f"reco_{r}")
            # reco train prints the fit time in its JSON report; the wall time includes loading.
            users, U, items, I, wall = reco_side(args.reco, d, spec, work, 42 + r)
            accs.append(top100_accuracy(users, U, items, I, te))
            fits.append(wall)
        examples = len(tr) * spec.get("epochs", 20)
        print(f"| reco two-tower | {label} | {statistics.mean(accs):.4f} (runs {', '.join(f'{a:.4f}' for a in accs)}) | {statistics.median(fits):.2f} | {examples / statistics.median(fits):,.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
