#!/usr/bin/env python3
"""Reads a `bench export-tracker --format tensorboard` export with
TensorBoard's own readers and compares it with what the Go test expects.

Needs the tensorboard package (not on Debian's python3 here; it is on the
GPU machines some sessions are lent). Make the inputs with the Go test:

    PEFTBENCH_TRACKER_KEEP=/tmp/keep go test ./tracker -run TestTensorBoardIndependentReader
    python3 tracker/testdata/tb_accumulator_check.py /tmp/keep/tb /tmp/keep/expected.json

Checks, per trial run: every scalar (tag, step, float32 value) through
event_accumulator.EventAccumulator (the legacy reader W&B's and Aim's
importers use) and through plugin_event_accumulator (the one TensorBoard's
own data provider uses, simple_value migrated to tensors); the hparams
session start and end parsed by the hparams plugin's metadata module (every
hyperparameter, the group shared by exactly the seeds of one
configuration, the status); and the root run's experiment. Prints one line
per run and "OK" or exits 1 with the differences.
"""
import json
import math
import os
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.plugins.hparams import metadata as hp_metadata
from tensorboard.util import tensor_util

ALL = {"scalars": 0, "tensors": 0}


def same(got, want_text):
    want = float(want_text)
    return got == want or (math.isnan(got) and math.isnan(want))


def check_run(logdir, name, exp, errors):
    path = os.path.join(logdir, name)
    legacy = event_accumulator.EventAccumulator(path, size_guidance=ALL)
    legacy.Reload()
    modern = plugin_event_accumulator.EventAccumulator(path, size_guidance=ALL)
    modern.Reload()
    scalar_tags = set(legacy.Tags()["scalars"])
    if scalar_tags != set(exp["scalars"]):
        errors.append("%s: scalar tags %s, want %s" % (name, sorted(scalar_tags), sorted(exp["scalars"])))
    for tag, points in exp["scalars"].items():
        if tag not in scalar_tags:
            continue
        got = [(e.step, e.value) for e in legacy.Scalars(tag)]
        if len(got) != len(points) or not all(
                g[0] == p["step"] and same(g[1], p["value"]) for g, p in zip(got, points)):
            errors.append("%s: %s = %s, want %s" % (name, tag, got, points))
        tens = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in modern.Tensors(tag)]
        if len(tens) != len(points) or not all(
                g[0] == p["step"] and same(g[1], p["value"]) for g, p in zip(tens, points)):
            errors.append("%s: %s via plugin_event_accumulator = %s, want %s" % (name, tag, tens, points))

    meta = modern.PluginTagToContent("hparams")
    start = hp_metadata.parse_session_start_info_plugin_data(meta["_hparams_/session_start_info"])
    end = hp_metadata.parse_session_end_info_plugin_data(meta["_hparams_/session_end_info"])
    got_hp = {}
    for k, v in start.hparams.items():
        kind = v.WhichOneof("kind")
        got_hp[k] = getattr(v, kind)
    want_hp = exp["hparams"]
    for k, w in want_hp.items():
        g = got_hp.get(k)
        if isinstance(w, bool) or isinstance(w, str):
            ok = g == w
        else:
            ok = isinstance(g, float) and g == float(w)
        if not ok:
            errors.append("%s: hparam %s = %r, want %r" % (name, k, g, w))
    for k in set(got_hp) - set(want_hp):
        errors.append("%s: extra hparam %s" % (name, k))
    if end.status != exp["status"]:
        errors.append("%s: status %d, want %d" % (name, end.status, exp["status"]))
    print("%s: %d scalar tags, %d hparams, group %r, status %d" % (
        name, len(scalar_tags), len(got_hp), start.group_name, end.status))
    return start.group_name


def main():
    logdir, expected = sys.argv[1], sys.argv[2]
    with open(expected) as f:
        want = json.load(f)["runs"]
    errors = []
    groups = {}
    for name, exp in sorted(want.items()):
        groups[name] = (check_run(logdir, name, exp, errors), exp["config"])
    by_group, by_config = {}, {}
    for name, (group, config) in groups.items():
        by_group.setdefault(group, set()).add(config)
        by_config.setdefault(config, set()).add(group)
    for group, configs in by_group.items():
        if len(configs) != 1:
            errors.append("group %r holds %d configurations" % (group, len(configs)))
    for config, gs in by_config.items():
        if len(gs) != 1:
            errors.append("configuration %s is in groups %s" % (config, sorted(gs)))

    root = plugin_event_accumulator.EventAccumulator(logdir, size_guidance=ALL)
    root.Reload()
    content = root.PluginTagToContent("hparams").get("_hparams_/experiment")
    if content is None:
        errors.append("root run: no _hparams_/experiment")
    else:
        experiment = hp_metadata.parse_experiment_plugin_data(content)
        names = {h.name for h in experiment.hparam_infos}
        wanted = set().union(*(set(e["hparams"]) for e in want.values()))
        if names != wanted:
            errors.append("experiment hparams %s, want %s" % (sorted(names), sorted(wanted)))
        print("root: experiment with %d hparams, %d metrics" % (len(names), len(experiment.metric_infos)))
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("OK: %d runs read by TensorBoard's EventAccumulator as expected" % len(want))


if __name__ == "__main__":
    main()
