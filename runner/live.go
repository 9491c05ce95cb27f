package runner

import (
	"peftbench/results"
	"peftbench/sweeps"
)

// liveSink is one attempt's live step log (results.LiveLog,
// trials/<id>/live.jsonl): the reporter appends every step row it keeps,
// in the order it keeps them, as the trainer reports it, so a dashboard or
// `bench status` sees a running trial's curves. The builtin and the
// external Command trainer both report through the reporter, so both
// write it; so does a Slurm task (RunTrial runs runTrial).
//
// The log is a view of what arrived, not the record: the shard is, and it
// wins. The two hold the same rows but where the runner trims the shard
// after the attempt (keepUpTo: a trainer that ran past its ASHA stop step
// keeps only its steps up to it in the shard). The runner removes the log
// once the shard is written; a log left beside no shard is a trial that is
// running or was killed, and its next attempt replaces it.
//
// Writing the log is best effort: a trial never fails for it. The first
// error is logged to trial.log and the attempt writes no more.
type liveSink struct {
	l   *results.LiveLog
	log *lineLog
}

// startLive creates the live log of attempt (1, 2, … within this run) of
// t, replacing an earlier attempt's. It returns nil, after logging why,
// when the log cannot be created.
func (r *run) startLive(t sweeps.Trial, attempt int, log *lineLog) *liveSink {
	l, err := results.CreateLive(r.dir, t.ID, r.attemptBase+attempt, r.now())
	if err != nil {
		log.printf("runner: no live step log for this attempt: %v", err)
		return nil
	}
	return &liveSink{l: l, log: log}
}

// step appends one step row. The reporter calls it under its lock, so the
// log's rows are in the order of the shard's.
func (s *liveSink) step(step int, split, metric string, value float64) {
	if s == nil || s.l == nil {
		return
	}
	if err := s.l.Append(int64(step), split, metric, value); err != nil {
		s.log.printf("runner: live step log: %v; not written further in this attempt", err)
		s.l.Close()
		s.l = nil
	}
}

// close closes the log when the attempt has ended (the reporter is
// sealed, so no step comes after); the file stays until the shard is
// written.
func (s *liveSink) close() {
	if s == nil || s.l == nil {
		return
	}
	if err := s.l.Close(); err != nil {
		s.log.printf("runner: live step log: %v", err)
	}
	s.l = nil
}

// removeLive removes t's live log once its shard is written: the shard
// holds its steps now.
func (r *run) removeLive(id string, log *lineLog) {
	if err := results.RemoveLive(r.dir, id); err != nil {
		log.printf("runner: %v", err)
	}
}

// dropLive removes the live log a kill left beside a finished shard,
// between writing the shard and removing the log: the shard wins, and the
// trial does not run again to remove it. Best effort, like the log.
func dropLive(sweepDir, id string) {
	results.RemoveLive(sweepDir, id)
}
