// Package configs is "a configuration across seeds", the one home of the
// idea every reader of a results folder needs (the role of benchproc in
// golang.org/x/perf): trials of one task, method and rank with equal
// resolved settings but the seed are one configuration (Config, Group);
// the settings that tell configurations apart (Varying, SetSettings); a
// configuration's runs along a swept setting such as the learning rate
// (Curves) and their reading at matched target loss (IntruderCells,
// Matched); and the column registry (Column, Lookup): every numeric
// column of trials.parquet and the known extra metrics by name, with the
// accessor on results.TrialRow, an axis label and the direction that is
// better.
//
// plots, regress and the CLI's intruders and fit commands use it; none of
// them groups trials or looks a metric up by name on its own.
package configs
