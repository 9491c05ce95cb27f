#!/usr/bin/python3
"""Reads an MLflow file store (mlruns/) the way MLflow's FileStore does,
for peftbench's tests: standard library only (no mlflow, no yaml module),
so meta.yaml is parsed by hand for the flat key: value maps MLflow writes.

Usage: mlruns_read.py MLRUNS  -> JSON on stdout:
  {"experiments": {id: {"meta": {...}, "runs": {run_id: {"meta": {...},
     "params": {k: v}, "tags": {k: v},
     "metrics": {key: [[timestamp, "<float.hex>", step], ...]},
     "artifacts": [relative paths]}}}}}
Exits 1 with a message where the store breaks MLflow's rules: meta.yaml
keys not those of an experiment or a run in MLflow's (sorted) order, a
metric line without exactly 3 fields "timestamp value step" (ints, a
float), a param or tag file ending in a newline, .trash missing.
"""
import json
import os
import sys

EXPERIMENT_KEYS = ["artifact_location", "creation_time", "experiment_id",
                   "last_update_time", "lifecycle_stage", "name"]
RUN_KEYS = ["artifact_uri", "end_time", "entry_point_name", "experiment_id",
            "lifecycle_stage", "run_id", "run_name", "run_uuid", "source_name",
            "source_type", "source_version", "start_time", "status", "tags",
            "user_id"]


class StoreError(Exception):
    pass


def scalar(text, where):
    """One YAML scalar of the forms MLflow's safe_dump writes."""
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise StoreError("%s: bad single-quoted scalar %r" % (where, text))
        return text[1:-1].replace("''", "'")
    if text.startswith('"'):
        return json.loads(text)  # the double-quoted forms written are JSON-compatible
    if text == "[]":
        return []
    if text in ("null", "~", ""):
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    return text


def read_meta(path, keys):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text.endswith("\n"):
        raise StoreError("%s: no final newline" % path)
    got, out = [], {}
    for n, line in enumerate(text.splitlines(), 1):
        key, sep, value = line.partition(": ")
        if not sep or line.startswith(" "):
            raise StoreError("%s:%d: not a flat 'key: value' line: %r" % (path, n, line))
        got.append(key)
        out[key] = scalar(value, "%s:%d" % (path, n))
    if got != keys:
        raise StoreError("%s: keys %s, MLflow writes %s" % (path, got, keys))
    return out


def read_value(path):
    with open(path, encoding="utf-8") as f:
        v = f.read()
    if v.endswith("\n"):
        raise StoreError("%s: ends in a newline (MLflow writes none)" % path)
    return v


def files_under(root):
    out = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            out.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(out)


def read_metric(path):
    points = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines[-1] != "":
        raise StoreError("%s: last line without a newline" % path)
    for n, line in enumerate(lines[:-1], 1):
        parts = line.strip().split(" ")
        if len(parts) != 3:
            raise StoreError("%s:%d: %d fields, want 'timestamp value step'" % (path, n, len(parts)))
        try:
            points.append([int(parts[0]), float(parts[1]).hex(), int(parts[2])])
        except ValueError as e:
            raise StoreError("%s:%d: %s" % (path, n, e))
    if not points:
        raise StoreError("%s: no data" % path)
    return points


def main():
    root = sys.argv[1]
    if not os.path.isdir(os.path.join(root, ".trash")):
        raise StoreError("%s: no .trash folder" % root)
    exps = {}
    for exp_id in sorted(os.listdir(root)):
        exp_dir = os.path.join(root, exp_id)
        if exp_id == ".trash" or not os.path.isdir(exp_dir):
            continue
        meta = read_meta(os.path.join(exp_dir, "meta.yaml"), EXPERIMENT_KEYS)
        if meta["experiment_id"] != exp_id:
            raise StoreError("%s: experiment_id %r" % (exp_dir, meta["experiment_id"]))
        runs = {}
        for run_id in sorted(os.listdir(exp_dir)):
            run_dir = os.path.join(exp_dir, run_id)
            if not os.path.isdir(run_dir):
                continue
            rmeta = read_meta(os.path.join(run_dir, "meta.yaml"), RUN_KEYS)
            if rmeta["run_id"] != run_id or rmeta["run_uuid"] != run_id or rmeta["experiment_id"] != exp_id:
                raise StoreError("%s: run_id %r run_uuid %r experiment_id %r" % (
                    run_dir, rmeta["run_id"], rmeta["run_uuid"], rmeta["experiment_id"]))
            run = {"meta": rmeta, "params": {}, "tags": {}, "metrics": {}, "artifacts": []}
            for sub in ("params", "tags"):
                for rel in files_under(os.path.join(run_dir, sub)):
                    run[sub][rel] = read_value(os.path.join(run_dir, sub, rel))
            for rel in files_under(os.path.join(run_dir, "metrics")):
                run["metrics"][rel] = read_metric(os.path.join(run_dir, "metrics", rel))
            run["artifacts"] = files_under(os.path.join(run_dir, "artifacts"))
            runs[run_id] = run
        exps[exp_id] = {"meta": meta, "runs": runs}
    json.dump({"experiments": exps}, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    try:
        main()
    except StoreError as e:
        print("mlruns_read: %s" % e, file=sys.stderr)
        sys.exit(1)
