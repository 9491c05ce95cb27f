// Package tracker writes a results folder as the files of other
// experiment trackers, so a sweep opens where researchers already look:
// TensorBoard event files (scalars per step, the HParams plugin with the
// seeds of one configuration grouped; W&B's `wandb sync` and Aim's `aim
// convert tensorboard` import them) and an MLflow file store (mlruns/:
// an experiment per sweep, a parent run per configuration across seeds, a
// child run per trial).
//
// The output is a function of the results folder alone: file names and
// times come from the trials' started_at and ended_at, run IDs from
// hashes of trial IDs, so exporting a folder twice gives the same bytes.
// The formats' facts are in the team's reference/tracker-formats.md,
// checked against TensorBoard's hparams protos and MLflow's file_store.py.
package tracker
