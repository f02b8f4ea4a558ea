#!/usr/bin/env python3
"""Builds Corpora/demo (BEIR layout) from the hand-written sources in scripts/demo/*.txt.

Source format, one document per block:
    ## Title
    text (one or more lines)
    ? a query the document answers
    ? another query (at least two per document)
Lines starting with a single "#" are section comments. scripts/demo/new/*.txt (same
format) become Corpora/demo/added/{documents.jsonl, queries.jsonl, qrels.tsv}: documents
not in the corpus, for the Quick start's `dsi add`.

Every document gets the id demo-NNN (in file order) and its queries demo-NNN-a, -b, ...
Of each document's first two queries one goes to qrels/test.tsv and the other to
qrels/train.tsv (alternating by document, so neither phrasing style dominates the test
split); further queries go to train. Deterministic: the same sources give the same bytes.
"""
import glob
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "Corpora", "demo")
docs = []
for path in sorted(glob.glob(os.path.join(here, "demo", "*.txt"))):
    cur = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith("## "):
            cur = {"title": line[3:].strip(), "text": [], "queries": [], "where": f"{path}:{n}"}
            docs.append(cur)
        elif line.startswith("# ") or not line.strip():
            continue
        elif cur is None:
            sys.exit(f"{path}:{n}: text before the first '## Title' line")
        elif line.startswith("? "):
            cur["queries"].append(line[2:].strip())
        else:
            cur["text"].append(line.strip())

titles = set()
for d in docs:
    if len(d["queries"]) < 2 or not d["text"]:
        sys.exit(f"{d['where']}: a document needs text and at least two queries")
    if d["title"].lower() in titles:
        sys.exit(f"{d['where']}: duplicate title {d['title']!r}")
    titles.add(d["title"].lower())

os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf-8") as c, \
        open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as q, \
        open(os.path.join(out, "qrels", "train.tsv"), "w", encoding="utf-8") as tr, \
        open(os.path.join(out, "qrels", "test.tsv"), "w", encoding="utf-8") as te:
    tr.write("query-id\tcorpus-id\tscore\n")
    te.write("query-id\tcorpus-id\tscore\n")
    for i, d in enumerate(docs, 1):
        did = f"demo-{i:03d}"
        c.write(json.dumps({"id": did, "title": d["title"], "text": " ".join(d["text"])}, ensure_ascii=False) + "\n")
        test_index = i % 2  # alternate which phrasing is held out
        for j, text in enumerate(d["queries"]):
            qid = f"{did}-{'abcdefgh'[j]}"
            q.write(json.dumps({"id": qid, "text": text}, ensure_ascii=False) + "\n")
            (te if j == test_index else tr).write(f"{qid}\t{did}\t1\n")
# Documents for the Quick start's `dsi add`: not in corpus.jsonl, with their queries.
added = []
for path in sorted(glob.glob(os.path.join(here, "demo", "new", "*.txt"))):
    cur = None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("## "):
            cur = {"title": line[3:].strip(), "text": [], "queries": []}
            added.append(cur)
        elif line.startswith("# ") or not line.strip():
            continue
        elif line.startswith("? "):
            cur["queries"].append(line[2:].strip())
        else:
            cur["text"].append(line.strip())
os.makedirs(os.path.join(out, "added"), exist_ok=True)
with open(os.path.join(out, "added", "documents.jsonl"), "w", encoding="utf-8") as a, \
        open(os.path.join(out, "added", "queries.jsonl"), "w", encoding="utf-8") as aq, \
        open(os.path.join(out, "added", "qrels.tsv"), "w", encoding="utf-8") as ar:
    ar.write("query-id\tcorpus-id\tscore\n")
    for i, d in enumerate(added, 1):
        did = f"demo-new-{i:02d}"
        a.write(json.dumps({"id": did, "title": d["title"], "text": " ".join(d["text"])}, ensure_ascii=False) + "\n")
        for j, text in enumerate(d["queries"]):
            qid = f"{did}-{'abcdefgh'[j]}"
            aq.write(json.dumps({"id": qid, "text": text}, ensure_ascii=False) + "\n")
            ar.write(f"{qid}\t{did}\t1\n")

print(f"{len(docs)} documents, {sum(len(d['queries']) for d in docs)} queries, {len(added)} documents to add -> {os.path.normpath(out)}")
