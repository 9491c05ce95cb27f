// Package regress finds regressions between two runs of the same sweep, as
// bench regress does for the nightly CI check: a method that learns less,
// forgets more or fails where it used to succeed, or an engine that got
// slower.
//
// Trials are grouped by configuration: task, method, rank and every other
// resolved setting, all but the seed. Within a group each metric's
// per-seed values in the baseline and the current run are compared with
// the two-sided Mann–Whitney U test (exact for small samples, from
// package analysis). A metric regresses when p < α and its median moved
// the wrong way by at least the minimum relative effect (defaults 0.05 and
// 5%). Each metric's direction is fixed in Metrics and, for task extras,
// in a small table; extras of unknown direction are compared too, but a
// change is only a warning, and extras of the base model (*_before,
// *_base) are left out like retain_*_before.
//
// A trial that was ok in the baseline and is absent from the current run,
// or ended failed, diverged, timed out or cancelled, is a regression of its
// own. Groups with too few seeds for the test to reach α (fewer than 4
// against 4 at α = 0.05) give a warning, never a failure. The same
// statistics compare `bench perf --json` figures across runs, the unit
// giving the direction.
//
// Wall time is left out of trial comparisons unless asked for
// (Options.WallMinEffect): on shared CI runners it varies by tens of
// percent between runs, while engine speed is checked by `bench perf`
// figures measured back to back on one machine.
package regress
