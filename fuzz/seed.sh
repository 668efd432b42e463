#!/usr/bin/env bash
# fuzz/seed.sh - writes the seed inputs of every fuzz target into fuzz/corpus/TARGET/.
#
# Seeds are valid inputs the fuzzer mutates from: small data files of each layout, the example
# specification of every model kind, the example pipeline, an artifact of every kind trained
# on the notebook data, and HNSW graphs of each metric. Run once (the corpus is kept in git,
# minimised); bench/fuzz.sh grows it.
#
# Usage: fuzz/seed.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q -p reco-cli
cargo build -q -p reco-ann --example ann_bench
reco=target/debug/reco
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Artifacts: the first example of every kind (the pipeline from examples/pipeline.toml).
"$reco" models --json > "$work/models.json"
python3 - "$work/models.json" "$work" <<'PY'
import json, sys
SMALL = {"text_buckets": 64, "embedding_dim": 8, "factors": 8, "layers": [8], "epochs": 2}
def shrink(v):
    # Small shapes keep the seeds small (and the fuzzer's inputs short); the layout is the same.
    if isinstance(v, dict):
        return {k: SMALL.get(k, shrink(x)) if k in SMALL else shrink(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shrink(x) for x in v]
    return v
for k in json.load(open(sys.argv[1])):
    if k["kind"] != "pipeline":
        open(f"{sys.argv[2]}/{k['kind']}.spec", "w").write(json.dumps(shrink(k["examples"][0])))
PY
for spec in "$work"/*.spec; do
  kind=$(basename "$spec" .spec)
  "$reco" train --model "$(cat "$spec")" --out "$work/art-$kind" 2>/dev/null \
    || echo "seed: $kind did not train, skipped" >&2
done
"$reco" train --model "$(python3 -c '
import json, sys, tomllib
p = tomllib.load(open("examples/pipeline.toml", "rb"))
for m in p["models"]:
    m.update({k: 8 for k in ("factors", "embedding_dim") if k in m})
    m.update({k: 2 for k in ("epochs",) if k in m})
print(json.dumps({"model": "pipeline", **p}))')" \
  --out "$work/art-pipeline" 2>/dev/null || echo "seed: pipeline did not train, skipped" >&2

# HNSW graphs of each metric, small enough that mutations reach every part of the file.
for metric in ip l2 cosine; do
  target/debug/examples/ann_bench "$work/ann-$metric" 40 4 "$metric" > /dev/null 2>&1 \
    || echo "seed: hnsw $metric not built" >&2
done

python3 - "$work" fuzz/corpus "$reco" <<'PY'
import glob, hashlib, json, os, sys
work, corpus, reco = sys.argv[1:]
SEP = b"\n--8<--\n"

def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    open(os.path.join(d, name), "wb").write(data)

# delimited: first byte = mode (bits 0-1 delimiter, 2 no header, 3-4 loader, 5 sum, 6 skip bad
# rows, 7 threshold).
csv = b"user,item,rating,timestamp\n1,a,4,100\n1,b,3.5,101\n2,a,5,99\n2,c,1,102\n3,\"b,x\",2,103\n"
tsv = csv.replace(b",", b"\t")
put("delimited", bytes([0]) + csv)
put("delimited", bytes([1]) + tsv)
put("delimited", bytes([2]) + b"user::item::rating\n1::a::4\n2::b::3\n")
put("delimited", bytes([3 | 4]) + b"1 a 4 100\n2 b 3 200\n")
put("delimited", bytes([0x40 | 0x80]) + csv + b"9,z,not-a-number,1\n")
put("delimited", bytes([0x10 | 4]) + b"a,Toy Story,Animation|Comedy,1995,a boy's toys\nb,Heat,Action,1995,\n")
put("delimited", bytes([0x18 | 4]) + b"s1,a,1\ns1,b,2\ns2,c,1\n")
put("delimited", bytes([0x20]) + b"user,item,weight,event\n1,a,1,view\n1,a,2,buy\n")

# movielens: first byte = layout (0 100K, 1 .dat, 2 .csv; bit 3 skips bad rows).
put("movielens", bytes([0]) + b"1\t10\t4\t881250949\n2\t20\t3\t891717742\n" + SEP
    + b"10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    + b"20|Heat (1995)|01-Jan-1995||http://y|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n" + SEP
    + b"1|24|M|technician|85711\n2|53|F|other|94043\n")
put("movielens", bytes([1]) + b"1::10::5::978300760\n2::20::3::978302109\n" + SEP
    + b"10::Toy Story (1995)::Animation|Children's|Comedy\n20::Heat (1995)::Action|Crime\n" + SEP
    + b"1::F::1::10::48067\n")
put("movielens", bytes([2]) + b"userId,movieId,rating,timestamp\n1,10,4.0,964982703\n2,20,3.5,964981247\n"
    + SEP + b"movieId,title,genres\n10,\"Toy Story (1995)\",Adventure|Animation\n20,Heat (1995),Action\n")

# recbole: .inter, .item, .user
put("recbole", b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t881250949\n2\t20\t3\t891717742\n"
    + SEP + b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n10\tToy Story\t1995\tAnimation Comedy\n"
    + SEP + b"user_id:token\tage:token\tgender:token\n1\t24\tM\n")
put("recbole", b"user_id:token\titem_id:token\n1\t10\n1\t20\n2\t10\n")

# spec_json: every example of every kind; spec_toml: model files and the example pipeline.
models = json.load(open(os.path.join(work, "models.json")))
def toml_value(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (int, float)): return repr(v)
    if isinstance(v, str): return json.dumps(v)
    if isinstance(v, list): return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict): return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(v)
for k in models:
    for ex in k["examples"]:
        put("spec_json", json.dumps(ex).encode())
        try:  # TOML has no null: examples holding one have no TOML form
            body = "[[model]]\n" + "".join(f"{json.dumps(key)} = {toml_value(v)}\n" for key, v in ex.items())
        except ValueError:
            continue
        put("spec_toml", bytes([1]) + body.encode())
put("spec_toml", bytes([0]) + open("examples/pipeline.toml", "rb").read())

# artifact: manifest, then NAME\n + bytes per file.
for art in sorted(glob.glob(os.path.join(work, "art-*"))):
    manifest = open(os.path.join(art, "manifest.json"), "rb").read()
    parts = [manifest]
    for name in sorted(os.listdir(art)):
        if name != "manifest.json":
            parts.append(name.encode() + b"\n" + open(os.path.join(art, name), "rb").read())
    put("artifact", SEP.join(parts))

for g in glob.glob(os.path.join(work, "ann-*", "graph-*", "hnsw.bin")):
    put("hnsw", open(g, "rb").read())
# serve: "METHOD URI [CONTENT-TYPE]\n" then the body; ids of the notebook data the target
# seeds its server with (users 0-59, items 0-39, categories 0-5).
J = "application/json"
for head, body in [
    ("GET /health/live", ""), ("GET /health/ready", ""), ("GET /metrics", ""),
    ("GET /openapi.json", ""), ("GET /v1/recommend/1?n=5", ""),
    ("GET /v1/recommend/2?n=3&offset=3&include_seen=true&explain=true", ""),
    ("GET /v1/recommend/3?n=4&category=1,2&match=all&exclude=1,2", ""),
    ("GET /v1/recommend/stranger?n=10", ""), ("GET /v1/recommend/1?n=0", ""),
    ("GET /v1/recommend/1?n=18446744073709551615&offset=1", ""),
    ("GET /v1/recommend/1?nope=1", ""),
    ("POST /v1/recommend/session " + J, json.dumps({"items": ["1", "2"], "n": 5})),
    ("POST /v1/recommend/session " + J, json.dumps({"items": [], "n": 5, "offset": 2})),
    ("GET /v1/items/1/similar?n=5", ""), ("GET /v1/items/unknown/similar", ""),
    ("GET /v1/popular?n=5&category=1", ""), ("GET /v1/latest?n=5&offset=5", ""),
    ("GET /v1/users/1", ""), ("GET /v1/items/1", ""),
    ("POST /v1/feedback " + J, json.dumps({"events": [
        {"user": "1", "item": "3", "type": "click"},
        {"user": "new", "item": "4", "type": "purchase", "value": 2.0, "timestamp": 1700000000}]})),
    ("POST /v1/feedback " + J, json.dumps({"events": [
        {"user": "2", "item": "5", "type": "dislike", "recommendation": "r-1"}],
        "idempotency_key": "k1"})),
    ("POST /v1/feedback " + J, json.dumps({"events": [
        {"user": "2", "item": "5", "type": "view", "value": -1e308}]})),
    ("POST /v1/feedback text/plain", "not json"),
    ("PUT /v1/users/9 " + J, json.dumps({"fields": {"age": 30, "tags": ["a"]}})),
    ("DELETE /v1/users/9", ""),
    ("PUT /v1/items/99 " + J, json.dumps({"title": "New", "categories": ["1"],
                                         "fields": {"year": 2000}, "timestamp": 1700000000})),
    ("DELETE /v1/items/99", ""),
    ("POST /v1/items " + J, json.dumps([{"id": "98", "title": "x", "categories": ["2"]}])),
    ("GET /v1/models", ""), ("POST /v1/models/1/activate", ""), ("POST /v1/models/rollback", ""),
    ("PATCH /v1/recommend/1", ""), ("GET /nowhere", ""),
    ("POST /v1/experiments " + J, json.dumps({"name": "e1", "arms": [
        {"name": "control", "version": 1}, {"name": "b", "version": 1, "share": 2}]})),
    ("POST /v1/experiments " + J, json.dumps({"name": "il", "design": "interleave",
        "traffic": 0.5, "arms": [{"name": "a", "version": 1}, {"name": "b", "version": 1}],
        "guard": {"enabled": True, "min_impressions": 10, "alpha": 0.05}})),
    ("POST /v1/experiments " + J, json.dumps({"name": "bad", "arms": [
        {"name": "a", "version": 7}, {"name": "a", "version": 1, "share": -1}]})),
    ("GET /v1/experiments", ""), ("GET /v1/experiments/e1", ""),
    ("POST /v1/experiments/e1/stop", ""),
    ("GET /v1/impressions/stats?seconds=3600&group=age", ""),
    ("GET /v1/impressions/stats?seconds=0", ""),
    ("GET /v1/monitoring/drift", ""),
    ("GET /v1/monitoring/quality?seconds=86400&buckets=24", ""),
    ("GET /v1/monitoring/quality?seconds=-5&buckets=100000", ""),
    ("GET /v1/recommend/1?preview=true&explain=true", ""),
    ("GET /dashboard", ""), ("GET /dashboard/app.js", ""),
    ("PUT /v1/users/1/opt-out " + J, json.dumps({"opt_out": True})),
    ("GET /v1/users/1/export", ""), ("GET /v1/users/nobody/export", ""),
]:
    put("serve", (head + "\n" + body).encode())

for t in sorted(os.listdir(corpus)):
    print(f"{t}: {len(os.listdir(os.path.join(corpus, t)))} seeds", file=sys.stderr)
PY
