#!/usr/bin/env python3
"""Chooses a fusion of the model's ranking with BM25's on dev, and reports it on test,
from TREC run files (no model needed once the runs exist).

    dsi eval --checkpoint CK --corpus C --split dev  --beam 100 --top-k 100 --run model-dev.txt
    dsi eval --checkpoint CK --corpus C --split test --beam 100 --top-k 100 --run model-test.txt
    dsi bm25 --corpus C --split dev  --run bm25-dev.txt
    dsi bm25 --corpus C --split test --run bm25-test.txt
    scripts/fusion_grid.py model-dev.txt bm25-dev.txt model-test.txt bm25-test.txt \
        C/qrels/test.tsv [C/qrels/train.tsv]

Dev judgements: the held-out sentences of a corpus without labels (query ids
`heldout:<document id>`, judged relevant to that document) or, given the train qrels
(the labelled protocol's dev split is held-out train queries), those. With the train
qrels the test figures are also split into seen / unseen queries (bm25s's definition:
a test query is seen when one of its relevant documents is relevant to a train query).

Methods, each over a grid of weights W (the model's), nDCG@10 as trec_eval computes it:
  rrf        W/(60 + model rank) + (1-W)/(60 + BM25 rank)           (dsi: --fusion-method rrf)
  scores     W*exp(log-prob) + (1-W)*s/max s                        (dsi: --fusion-method scores)
  zscore     W*z(log-prob) + (1-W)*z(s), per-query z over each list,
             a document a list lacks taking that list's lowest z    (dsi: --fusion-method zscore)
  minmax     as zscore with (s - min)/(max - min)                   (not in dsi)
  loglinear  log-prob + W*s, each list's lowest for what it lacks   (not in dsi; W is lambda)
MODEL_DEPTH=N in the environment keeps only the model's best N per query (dsi gives the
fusion its best --fusion-depth, 100 by default).
"""
import collections
import math
import os
import sys


def read_run(path):
    run = collections.defaultdict(list)
    for line in open(path):
        q, _, d, _, s, _ = line.split()
        run[q].append((d, float(s)))
    return run


def read_qrels(path):
    qrels = collections.defaultdict(dict)
    for i, line in enumerate(open(path)):
        f = line.strip().split('\t')
        if i == 0 and not f[-1].lstrip('-').isdigit():
            continue  # BEIR header
        if int(f[-1]) > 0:
            qrels[f[0]][f[1]] = int(f[-1])
    return qrels


def ndcg(ranked, rel, k=10):
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0


def mean_ndcg(run, qrels):
    return sum(ndcg(run.get(q, []), qrels[q]) for q in qrels) / len(qrels) if qrels else float('nan')


def standardized(scores):
    mu = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mu) ** 2 for s in scores) / len(scores))
    return [(s - mu) / sd if sd > 0 else 0 for s in scores]


def fuse_one(ml, bl, method, w):
    sc = {d: 0.0 for d, _ in ml + bl}
    if method == 'rrf':
        for r, (d, _) in enumerate(ml):
            sc[d] += w / (60 + r + 1)
        for r, (d, _) in enumerate(bl):
            sc[d] += (1 - w) / (60 + r + 1)
    elif method == 'scores':
        best = max((s for _, s in bl), default=0)
        for d, s in ml:
            sc[d] += w * math.exp(s)
        for d, s in bl:
            sc[d] += (1 - w) * (s / best if best > 0 else 0)
    elif method in ('zscore', 'minmax'):
        for lst, ww in ((ml, w), (bl, 1 - w)):
            if not lst:
                continue
            vals = [s for _, s in lst]
            if method == 'zscore':
                norm = standardized(vals)
            else:
                hi, lo = max(vals), min(vals)
                norm = [(s - lo) / (hi - lo) if hi > lo else 1 for s in vals]
            listed = {d for d, _ in lst}
            for (d, _), z in zip(lst, norm):
                sc[d] += ww * z
            for d in sc:
                if d not in listed:
                    sc[d] += ww * min(norm)
    elif method == 'loglinear':
        md, bd = dict(ml), dict(bl)
        mfloor, bfloor = min(md.values(), default=0), min(bd.values(), default=0)
        for d in sc:
            sc[d] = md.get(d, mfloor) + w * bd.get(d, bfloor)
    # Ties: the model's order, then BM25's (as dsi does).
    mr = {d: r for r, (d, _) in enumerate(ml)}
    br = {d: r for r, (d, _) in enumerate(bl)}
    return [d for d, _ in sorted(sc.items(), key=lambda x: (-x[1], mr.get(x[0], 1 << 30), br.get(x[0], 1 << 30)))]


def fuse(model, bm25, method, w):
    return {q: fuse_one(model.get(q, []), bm25.get(q, []), method, w) for q in set(model) | set(bm25)}


GRID = {
    'rrf': [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    'scores': [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    'zscore': [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    'minmax': [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    'loglinear': [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0],
}


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    mdev, bdev, mtest, btest = (read_run(p) for p in sys.argv[1:5])
    depth = int(os.environ.get('MODEL_DEPTH', '100'))
    mdev = {q: l[:depth] for q, l in mdev.items()}
    mtest = {q: l[:depth] for q, l in mtest.items()}
    qtest = {q: r for q, r in read_qrels(sys.argv[5]).items() if q in btest or q in mtest}
    train = read_qrels(sys.argv[6]) if len(sys.argv) > 6 else {}
    qdev = {}
    for q in set(mdev) | set(bdev):
        if q.startswith('heldout:'):
            qdev[q] = {q[len('heldout:'):]: 1}
        elif q in train:
            qdev[q] = train[q]
    if not qdev:
        sys.exit('error: no dev query of the runs is judged (held-out sentence ids, or pass the train qrels)')
    seen_docs = {d for r in train.values() for d in r}
    unseen = {q: r for q, r in qtest.items() if not any(d in seen_docs for d in r)}
    seen = {q: r for q, r in qtest.items() if q not in unseen}
    plain = lambda run: {q: [d for d, _ in l] for q, l in run.items()}

    def split(run):
        return f' seen/unseen {mean_ndcg(run, seen):.4f}/{mean_ndcg(run, unseen):.4f}' if train else ''

    print(f'dev {len(qdev)} queries, test {len(qtest)}' + (f' ({len(unseen)} unseen)' if train else ''))
    print(f'model  dev {mean_ndcg(plain(mdev), qdev):.4f} test {mean_ndcg(plain(mtest), qtest):.4f}{split(plain(mtest))}')
    print(f'bm25   dev {mean_ndcg(plain(bdev), qdev):.4f} test {mean_ndcg(plain(btest), qtest):.4f}{split(plain(btest))}')
    for method, weights in GRID.items():
        rows = [(w, mean_ndcg(fuse(mdev, bdev, method, w), qdev), mean_ndcg(fuse(mtest, btest, method, w), qtest)) for w in weights]
        print(f'{method:9s} ' + ' '.join(f'{w}:{d:.3f}/{t:.3f}' for w, d, t in rows))
        w, d, t = max(rows, key=lambda r: r[1])
        print(f'  best on dev: W={w} dev {d:.4f} test {t:.4f}{split(fuse(mtest, btest, method, w))}')


if __name__ == '__main__':
    main()
