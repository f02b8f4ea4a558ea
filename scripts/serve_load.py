#!/usr/bin/env python3
"""Helpers of scripts/serve-load.sh (standard library only).

  queries CORPUS OUT.lua            wrk script cycling GET /search over CORPUS's test queries
  adds URL DOCS N OUT.json          add N documents one by one (POST /documents), then search
                                    each by its own title until it is found; report the delays
"""
import json, sys, time, urllib.parse, urllib.request


def test_queries(corpus):
    ids = set()
    with open(f"{corpus}/qrels/test.tsv") as f:
        next(f)
        for line in f:
            ids.add(line.split("\t")[0])
    qs = []
    with open(f"{corpus}/queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            if str(q["id"]) in ids:
                qs.append(q["text"])
    return qs


def write_lua(corpus, out):
    qs = test_queries(corpus)
    paths = ["/search?k=10&q=" + urllib.parse.quote(q[:900]) for q in qs]
    with open(out, "w") as f:
        f.write("local paths = {\n")
        for p in paths:
            f.write("  %s,\n" % json.dumps(p))
        f.write("}\nlocal i = 0\n")
        f.write("request = function()\n  i = i %% %d + 1\n  return wrk.format('GET', paths[i])\nend\n" % len(paths))
        f.write(
            "done = function(summary, latency, requests)\n"
            "  io.write(string.format('WRK {\"requests\": %d, \"seconds\": %.3f, \"errors\": %d, \"non2xx\": %d, "
            "\"p50_ms\": %.2f, \"p90_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}\\n', summary.requests, summary.duration / 1e6, "
            "summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status, "
            "latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))\n"
            "end\n")
    print(f"{len(paths)} queries")


def call(url, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read())


def adds(url, docs, n, out):
    rows = []
    with open(docs) as f:
        for line in f:
            d = json.loads(line)
            did = "new-" + str(d.get("_id", d.get("id")))
            title = d.get("title") or d["text"][:80]
            if not title.strip():
                continue  # nothing to search it by (Cranfield's document 471 is empty)
            rows.append({"id": did, "title": title, "text": d["text"]})
            if len(rows) == n:
                break
    delays, add_s, found_rank = [], [], []
    lost = 0
    for d in rows:
        t0 = time.time()
        status, r = call(url + "/documents", {"documents": [d]})
        acked = time.time()
        add_s.append(acked - t0)
        if status != 200:
            raise SystemExit(f"add {d['id']}: status {status}: {r}")
        found = None
        while time.time() - acked < 5:
            _, res = call(url + "/search?k=10&q=" + urllib.parse.quote(d["title"][:900]))
            ids = [x["id"] for x in res["results"]]
            if d["id"] in ids:
                found = time.time() - acked
                found_rank.append(ids.index(d["id"]) + 1)
                break
        if found is None:
            lost += 1
        else:
            delays.append(found)
    delays.sort()
    add_s.sort()
    rep = {
        "documents": len(rows), "not_found_within_5s": lost, "found_within_1s": sum(1 for x in delays if x <= 1.0),
        "found_at_rank1": sum(1 for r in found_rank if r == 1),
        "visible_delay_p50_s": delays[len(delays) // 2] if delays else None, "visible_delay_max_s": delays[-1] if delays else None,
        "add_p50_s": add_s[len(add_s) // 2], "add_p99_s": add_s[min(len(add_s) - 1, int(len(add_s) * 0.99))],
    }
    json.dump(rep, open(out, "w"))
    print(json.dumps(rep))


if __name__ == "__main__":
    if sys.argv[1] == "queries":
        write_lua(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "adds":
        adds(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(__doc__)
