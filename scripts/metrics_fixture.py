#!/usr/bin/env python3
"""Writes the expected metric values of a run, computed by ranx, for the Swift test that
checks swift-dsi's own metric code against them (to 1e-6).

    dsi bm25 --corpus ../shared/corpora/scifact --split test --run /tmp/bm25.run
    head -n ... (the test fixture keeps the top 10 per query)
    python3 scripts/metrics_fixture.py /tmp/bm25.run ../shared/corpora/scifact/qrels/test.tsv \
        Tests/DSIIndexTests/Fixtures/scifact-test-bm25

Writes FIXTURE.run (top 10 per query) and FIXTURE.json ({metric: value}). Needs
`pip install ranx`. The run plays the role of ../shared/peers/bm25_reference.py's model:
the same metrics over the same run, from two implementations.
"""
import json
import sys
from collections import defaultdict

from ranx import Qrels, Run, evaluate

run_path, qrels_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
run = defaultdict(dict)
lines = []
for line in open(run_path):
    q, _, d, rank, score, tag = line.split()
    if int(rank) <= 10:
        run[q][d] = float(score)
        lines.append(line)
qrels = defaultdict(dict)
for i, line in enumerate(open(qrels_path)):
    if i == 0:
        continue
    q, d, s = line.rstrip("\n").split("\t")
    if int(s) > 0:
        qrels[q][d] = int(s)
metrics = ["hit_rate@1", "hit_rate@10", "mrr@10", "ndcg@10", "recall@10"]
values = evaluate(Qrels(dict(qrels)), Run(dict(run)), metrics)
open(out + ".run", "w").writelines(lines)
json.dump({m: float(values[m]) for m in metrics}, open(out + ".json", "w"), indent=1, sort_keys=True)
print(json.dumps({m: float(values[m]) for m in metrics}))
