#!/usr/bin/env python3
"""Reference facts about the SpamAssassin asset (datasets/spam-assassin/data.jsonl under NQ_HOME or
~/.cache/nativequant) computed with Python's own e-mail parser, for tests/NativeQuant.Tests/Data:
records per group, and for every 100th record its position, id, Subject (email.message_from_string, whitespace of
folded lines collapsed to one space) and, for single-part mails, the first 60 characters of the payload. Run: /usr/bin/python3 make_data_reference.py"""
import collections
import email
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
home = os.environ.get("NQ_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "nativequant")
rows = [json.loads(l) for l in open(os.path.join(home, "datasets", "spam-assassin", "data.jsonl"), encoding="utf-8")]
groups = collections.Counter(r["group"] for r in rows)
sample = []
for i, r in list(enumerate(rows))[::100]:
    m = email.message_from_string(r["text"])
    item = {"index": i, "id": r["id"], "subject": re.sub(r"\s+", " ", str(m["Subject"] or "")).strip()}
    if not m.is_multipart():
        item["body_start"] = m.get_payload().replace("\r\n", "\n").strip()[:60]
    sample.append(item)
with open(os.path.join(HERE, "spam_assassin_reference.json"), "w") as f:
    json.dump({"records": len(rows), "groups": dict(sorted(groups.items())), "subjects": sample}, f, indent=1)
