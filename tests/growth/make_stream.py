#!/usr/bin/env python3
"""Writes an installation export stream (the format of `admin export`, README's *Export and
import*) with IDENTITIES identities in one pool of tenant `growth`, each with DATASETS
datasets of RECORDS records, for `admin import`: a large store in seconds instead of hours
of syncs. Usage: make_stream.py BASE_STREAM IDENTITIES [DATASETS RECORDS] > out.jsonl

BASE_STREAM is an export of a store holding the tenant `growth` and its pool (its meta,
tenants, credentials and pools lines are kept); the generated rows follow them."""

import json
import sys
import uuid

base, identities = sys.argv[1], int(sys.argv[2])
datasets = int(sys.argv[3]) if len(sys.argv) > 3 else 2
records = int(sys.argv[4]) if len(sys.argv) > 4 else 20
out = sys.stdout
lines = [json.loads(line) for line in open(base)]
pool = next(line["row"]["pool_id"] for line in lines if line.get("type") == "pools")
region = pool.split(":")[0]
rows = 0
ORDER = ["meta", "tenants", "credentials", "oidc_issuers", "functions", "function_aliases", "function_recording", "pools"]
out.write(json.dumps(lines[0]) + "\n")
for table in ORDER:
    for line in lines[1:]:
        if line.get("type") == table:
            out.write(json.dumps(line) + "\n")
            rows += 1
T = 1_796_000_000
ids = sorted(f"{region}:{uuid.UUID(int=(n * 0x9E3779B97F4A7C15 + 1) % (1 << 128))}" for n in range(identities))


def emit(table, row):
    global rows
    out.write(json.dumps({"type": table, "row": row}, separators=(",", ":")) + "\n")
    rows += 1


for i in ids:
    emit("identities", {"identity_id": i, "pool_id": pool, "created": T, "modified": T, "merged_into": None, "authenticated": 0})
names = [f"data{d}" for d in range(datasets)]
for i in ids:
    for name in names:
        emit("datasets", {"pool_id": pool, "identity_id": i, "name": name, "sync_count": records, "created": T,
                          "modified": T, "modified_by": i, "deleted": 0, "deleted_at": 0, "merged_from": None,
                          "merged_base": None})
for i in ids:
    for name in names:
        for k in sorted(f"key{r:04d}" for r in range(records)):
            emit("records", {"pool_id": pool, "identity_id": i, "dataset": name, "key": k, "value": "v" * 24,
                             "sync_count": 1 + int(k[3:]), "modified": T, "modified_by": i, "device_modified_ms": None})
out.write(json.dumps({"type": "end", "rows": rows}) + "\n")
