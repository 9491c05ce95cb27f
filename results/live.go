package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"peftbench/internal/atomicfile"
)

// LiveFile is a running trial's step log, in its shard folder
// (sweepDir/trials/<id>/live.jsonl): a header line naming the trial and
// the attempt, then one line per step metric, appended and written through
// as the trainer reports it, so a dashboard sees curves while the trial
// runs. Each line is one write: a crash loses at most the line being
// written, and a reader skips a last line without its newline. Each attempt
// replaces the file (a rename), so a rerun's log never holds an earlier
// attempt's steps. When the trial's shard is written its steps are in the
// shard, and through compaction in steps.parquet; the runner then removes
// the log. A log beside no complete shard is a trial that is running or
// was killed; one beside a shard is a rerun's (an ASHA promotion, a
// forced rerun) when its header's Started is after the shard's EndedAt,
// else stale (a kill between the shard's write and the log's removal).
const LiveFile = "live.jsonl"

// LiveHeader is a live log's first line.
type LiveHeader struct {
	Trial   string    `json:"trial"`
	Attempt int       `json:"attempt"`
	Started time.Time `json:"started"`
}

// Live is what ReadLive found in a live log.
type Live struct {
	Header LiveHeader
	Steps  []StepRow
	// Modified is the log's modification time: when its last line landed.
	Modified time.Time
}

// LiveLog appends step metrics to one attempt's live log. It is safe for
// concurrent use.
type LiveLog struct {
	mu  sync.Mutex
	f   *os.File
	id  string
	buf []byte
}

// CreateLive starts the live log of one attempt of a trial, replacing any
// earlier attempt's.
func CreateLive(sweepDir, trialID string, attempt int, started time.Time) (*LiveLog, error) {
	if err := checkID(trialID); err != nil {
		return nil, err
	}
	dir := ShardDir(sweepDir, trialID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results: live log of %s: %w", trialID, err)
	}
	head, err := json.Marshal(LiveHeader{Trial: trialID, Attempt: attempt, Started: started.UTC()})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LiveFile)
	if err := atomicfile.WriteFile(path, append(head, '\n')); err != nil {
		return nil, fmt.Errorf("results: live log of %s: %w", trialID, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("results: live log of %s: %w", trialID, err)
	}
	return &LiveLog{f: f, id: trialID}, nil
}

// Append writes one step metric as one line. A non-finite value is
// written as the string "NaN", "+Inf" or "-Inf" (JSON has no such numbers).
func (l *LiveLog) Append(step int64, split, metric string, value float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("results: live log of %s: closed", l.id)
	}
	b := l.buf[:0]
	b = append(b, `{"step":`...)
	b = strconv.AppendInt(b, step, 10)
	b = append(b, `,"split":`...)
	b = strconv.AppendQuote(b, split)
	b = append(b, `,"metric":`...)
	b = strconv.AppendQuote(b, metric)
	b = append(b, `,"value":`...)
	switch {
	case math.IsNaN(value), math.IsInf(value, 0):
		b = strconv.AppendQuote(b, strconv.FormatFloat(value, 'g', -1, 64))
	default:
		b = strconv.AppendFloat(b, value, 'g', -1, 64)
	}
	b = append(b, "}\n"...)
	l.buf = b
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("results: live log of %s: %w", l.id, err)
	}
	return nil
}

// Close closes the log; the file stays.
func (l *LiveLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// RemoveLive removes a trial's live log, once its shard holds its steps.
// A log that is not there is no error.
func RemoveLive(sweepDir, trialID string) error {
	if err := checkID(trialID); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(ShardDir(sweepDir, trialID), LiveFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// liveLine is one step line as read back.
type liveLine struct {
	Step   *int64          `json:"step"`
	Split  string          `json:"split"`
	Metric string          `json:"metric"`
	Value  json.RawMessage `json:"value"`
}

// ReadLive reads a trial's live log. A log that does not exist is an error
// satisfying errors.Is(err, os.ErrNotExist). A last line without its
// newline (being written, or torn by a crash) is skipped; any other
// malformed line is an error naming the file and the line.
func ReadLive(sweepDir, trialID string) (*Live, error) {
	if err := checkID(trialID); err != nil {
		return nil, err
	}
	path := filepath.Join(ShardDir(sweepDir, trialID), LiveFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return parseLive(path, trialID, data, st.ModTime())
}

func parseLive(path, trialID string, data []byte, mod time.Time) (*Live, error) {
	lv := &Live{Modified: mod}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		where := func(format string, args ...any) error {
			return fmt.Errorf("results: %s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		if n == 1 {
			if err := json.Unmarshal(line, &lv.Header); err != nil {
				return nil, where("bad header: %v", err)
			}
			if lv.Header.Trial != trialID {
				return nil, where("header names trial %q, want %q", lv.Header.Trial, trialID)
			}
			continue
		}
		var l liveLine
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, where("%v", err)
		}
		if l.Step == nil || l.Split == "" || l.Metric == "" || len(l.Value) == 0 {
			return nil, where("a step line needs step, split, metric and value")
		}
		v, err := liveValue(l.Value)
		if err != nil {
			return nil, where("value: %v", err)
		}
		lv.Steps = append(lv.Steps, StepRow{TrialID: trialID, Step: *l.Step, Split: l.Split, Metric: l.Metric, Value: v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("results: %s:%d: %w", path, n+1, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("results: %s: no header line", path)
	}
	return lv, nil
}

func liveValue(raw json.RawMessage) (float64, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		switch s {
		case "NaN", "+Inf", "-Inf":
			return strconv.ParseFloat(s, 64)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseFloat(string(raw), 64)
}

// LiveTrials lists, sorted, the trials of a sweep folder that have a live
// log: running, or killed before their shard was written.
func LiveTrials(sweepDir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(sweepDir, TrialsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if !e.IsDir() || checkID(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(sweepDir, TrialsDir, e.Name(), LiveFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}
