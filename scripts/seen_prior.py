#!/usr/bin/env python3
"""Is the model's loss on unseen documents a prior toward the documents train queries
point to? Re-ranks a model's run files with each such ("seen") document's
log-probability lowered by beta, and reports dev and test nDCG@10 (test split into
seen / unseen queries). Offline: a document outside a query's run stays outside.

    dsi eval --checkpoint CK --corpus C --split dev  --beam 100 --top-k 100 --run model-dev.txt
    dsi eval --checkpoint CK --corpus C --split test --beam 100 --top-k 100 --run model-test.txt
    scripts/seen_prior.py model-dev.txt model-test.txt C/qrels/train.tsv C/qrels/test.tsv

On dev (held-out train queries) "seen" means relevant to a train query that is not a dev
query; on test, relevant to any train query (as dsi eval counts it).
"""
import collections
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fusion_grid import read_qrels, read_run  # noqa: E402


def ndcg10(run, qrels):
    total = 0.0
    for q, rel in qrels.items():
        ranked = run.get(q, [])[:10]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sorted(rel.values(), reverse=True)[:10]
        total += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return total / len(qrels) if qrels else float('nan')


def penalised(run, beta, seen):
    return {q: [d for d, s in sorted(lst, key=lambda x: -(x[1] - (beta if x[0] in seen else 0.0)))]
            for q, lst in run.items()}


def main():
    dev_run, test_run = read_run(sys.argv[1]), read_run(sys.argv[2])
    train, test = read_qrels(sys.argv[3]), read_qrels(sys.argv[4])
    dev = {q: train[q] for q in dev_run if q in train}
    seen_dev = {d for q, rel in train.items() if q not in dev for d in rel}
    seen_test = {d for rel in train.values() for d in rel}
    test_seen = {q: r for q, r in test.items() if any(d in seen_test for d in r)}
    test_unseen = {q: r for q, r in test.items() if q not in test_seen}
    print(f"dev {len(dev)} queries; test {len(test_seen)} seen, {len(test_unseen)} unseen")
    print("beta   dev    test   seen   unseen")
    for beta in [0, 0.25, 0.5, 1, 1.5, 2, 3]:
        d = penalised(dev_run, beta, seen_dev)
        t = penalised(test_run, beta, seen_test)
        print(f"{beta:<5}  {ndcg10(d, dev):.3f}  {ndcg10(t, test):.3f}  {ndcg10(t, test_seen):.3f}  {ndcg10(t, test_unseen):.3f}")


if __name__ == '__main__':
    main()
