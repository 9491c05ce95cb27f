package dashboard

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"peftbench/results"
)

// fileKey identifies one version of a file: absent, or its size and
// modification time.
type fileKey struct {
	exists bool
	size   int64
	mod    int64 // Unix nanoseconds
}

func statKey(path string) fileKey {
	fi, err := os.Stat(path)
	if err != nil {
		return fileKey{}
	}
	return fileKey{true, fi.Size(), fi.ModTime().UnixNano()}
}

// trialKey is one version of a trial folder: the folder itself (its
// modification time changes when a shard file or a live log is created,
// renamed into place or removed) and its live log (appends change only the
// file).
type trialKey struct {
	dir, live fileKey
}

// scan is what one pass of stat calls over a sweep folder saw.
type scan struct {
	manifest, trials, steps, spectra, checksums, annotations fileKey
	trialDirs                                                map[string]trialKey
	writer                                                   lockState
	version                                                  string
}

// folder is one served sweep folder with its caches. Every read of the
// folder goes through snapshot, which re-reads only the files whose
// (size, mtime) changed since the last call.
type folder struct {
	index int
	dir   string

	mu      sync.Mutex
	last    *snapshot
	mkey    fileKey
	planned []planned // the manifest's trials, in plan order
	name    string    // the manifest's sweep name, else the folder's

	tkey, ckey fileKey
	table      map[string]*results.TrialRow // trials.parquet's rows by ID

	shards map[string]*shardEntry
	lives  map[string]*liveEntry

	akey fileKey
	ann  map[string]results.Annotation

	stepsKey  fileKey
	stepTable map[string][]results.StepRow
	specKey   fileKey
	specTable map[string][]results.SpectrumRow
	shardData map[string]*shardData // recent per-trial shard reads for steps and spectra
}

// shardEntry is what the trial folder's shard held when its folder had
// key: a trial row, or nothing complete, or damage.
type shardEntry struct {
	key trialKey
	// covered: the compacted tables were fresh when loaded and hold this
	// trial as its shard then was; the row is the table's.
	covered bool
	row     *results.TrialRow
	err     error // damaged shard
}

type liveEntry struct {
	key  fileKey
	live *results.Live
	err  error
}

type shardData struct {
	key   trialKey
	shard *results.Shard
}

// planned is one trial of the manifest's plan: its canonical config (the
// JSON results.TrialRow.Config holds) and identity.
type planned struct {
	config json.RawMessage
	ID     string `json:"trial_id"`
	Index  int64  `json:"index"`
	Method string `json:"method"`
	Rank   int64  `json:"rank"`
	Task   string `json:"task"`
	Seed   int64  `json:"seed"`
	Phase  string `json:"phase"`
	Sweep  string `json:"sweep"`
}

func newFolder(index int, dir string) *folder {
	return &folder{index: index, dir: dir, name: filepath.Base(filepath.Clean(dir)),
		shards: map[string]*shardEntry{}, lives: map[string]*liveEntry{}, shardData: map[string]*shardData{}}
}

// scan stats the folder's files and computes its version: a hash over the
// (name, size, mtime) of every file the dashboard reads, and over whether
// the run holding the folder's lock is alive (a kill -9 changes no file).
func (f *folder) scan() (*scan, error) {
	p := func(name string) string { return filepath.Join(f.dir, name) }
	s := &scan{
		manifest:    statKey(p(results.ManifestFile)),
		trials:      statKey(p(results.TrialsFile)),
		steps:       statKey(p(results.StepsFile)),
		spectra:     statKey(p(results.SpectraFile)),
		checksums:   statKey(p(results.ChecksumsFile)),
		annotations: statKey(p(results.AnnotationsFile)),
		trialDirs:   map[string]trialKey{},
		writer:      writerState(f.dir),
	}
	if fi, err := os.Stat(f.dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("dashboard: %s: not a results folder", f.dir)
	}
	ents, err := os.ReadDir(p(results.TrialsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || name == "" || name[0] == '.' {
			continue
		}
		d := filepath.Join(p(results.TrialsDir), name)
		s.trialDirs[name] = trialKey{statKey(d), statKey(filepath.Join(d, results.LiveFile))}
	}
	h := sha256.New()
	for _, k := range []struct {
		n string
		k fileKey
	}{{"m", s.manifest}, {"t", s.trials}, {"s", s.steps}, {"p", s.spectra}, {"c", s.checksums}, {"a", s.annotations}} {
		fmt.Fprintf(h, "%s %v\n", k.n, k.k)
	}
	fmt.Fprintf(h, "w %v\n", s.writer)
	for _, id := range slices.Sorted(mapsKeys(s.trialDirs)) {
		fmt.Fprintf(h, "%s %v\n", id, s.trialDirs[id])
	}
	s.version = hex.EncodeToString(h.Sum(nil)[:8])
	return s, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// snapshot returns the folder's current state, rebuilt from what changed
// when its version differs from the last one.
func (f *folder) snapshot() (*snapshot, error) {
	s, err := f.scan()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != nil && f.last.version == s.version {
		return f.last, nil
	}
	if err := f.refresh(s); err != nil {
		return nil, err
	}
	snap, err := f.build(s)
	if err != nil {
		return nil, err
	}
	f.last = snap
	return snap, nil
}

// refresh re-reads what changed since the last scan.
func (f *folder) refresh(s *scan) error {
	if s.manifest != f.mkey {
		f.mkey, f.planned = s.manifest, nil
		if s.manifest.exists {
			m, err := results.ReadManifest(f.dir)
			if err != nil {
				return err
			}
			if m.Sweep != "" {
				f.name = m.Sweep
			}
			var raws []json.RawMessage
			if len(m.Trials) > 0 {
				if err := json.Unmarshal(m.Trials, &raws); err != nil {
					return fmt.Errorf("dashboard: %s: trials: %w", filepath.Join(f.dir, results.ManifestFile), err)
				}
			}
			for i, raw := range raws {
				var pt planned
				if err := json.Unmarshal(raw, &pt); err != nil || pt.ID == "" {
					return fmt.Errorf("dashboard: %s: trial %d: not a trial (%v)", filepath.Join(f.dir, results.ManifestFile), i, err)
				}
				pt.config = raw
				f.planned = append(f.planned, pt)
			}
		}
	}

	if s.trials != f.tkey || s.checksums != f.ckey {
		f.tkey, f.ckey, f.table = s.trials, s.checksums, nil
		f.stepTable, f.specTable, f.stepsKey, f.specKey = nil, nil, fileKey{}, fileKey{}
		clear(f.shards) // the baseline of covered shards moves with the table
		if s.trials.exists {
			rows, err := results.ReadTrials(filepath.Join(f.dir, results.TrialsFile))
			if err != nil {
				return err
			}
			f.table = make(map[string]*results.TrialRow, len(rows))
			for i := range rows {
				f.table[rows[i].TrialID] = &rows[i]
			}
			// Fresh tables hold every complete shard: take their rows
			// rather than read hundreds of shards, and read a trial's shard
			// only once its folder changes.
			if stale, err := results.TablesStale(f.dir); err == nil && stale == "" {
				for id, k := range s.trialDirs {
					if r := f.table[id]; r != nil {
						f.shards[id] = &shardEntry{key: k, covered: true, row: r}
					}
				}
			}
		}
	}

	for id := range f.shards {
		if _, ok := s.trialDirs[id]; !ok {
			delete(f.shards, id)
		}
	}
	for id := range f.lives {
		if !s.trialDirs[id].live.exists {
			delete(f.lives, id)
		}
	}
	for id, k := range s.trialDirs {
		if e := f.shards[id]; e == nil || e.key.dir != k.dir {
			e = &shardEntry{key: k}
			sh, err := results.ReadShard(f.dir, id)
			switch {
			case errors.Is(err, results.ErrIncomplete):
			case err != nil:
				e.err = err
			default:
				e.row = &sh.Trial
				f.shardData[id] = &shardData{key: k, shard: sh}
			}
			f.shards[id] = e
		} else {
			e.key = k
		}
		if k.live.exists {
			if l := f.lives[id]; l == nil || l.key != k.live {
				lv, err := results.ReadLive(f.dir, id)
				f.lives[id] = &liveEntry{key: k.live, live: lv, err: err}
			}
		}
	}
	if len(f.shardData) > 64 {
		clear(f.shardData)
	}

	if s.annotations != f.akey {
		ann, err := results.ReadAnnotations(f.dir)
		if err != nil {
			return err
		}
		f.akey, f.ann = s.annotations, ann
	}
	return nil
}

// trialRows lists the folder's trials in plan order, each with its
// dashboard status: a complete shard's or table's row; a live log's
// trial (running while the folder's writer is alive, else killed); a
// planned trial not started (pending); a damaged shard.
func (f *folder) trialRows(s *scan) []trialState {
	var out []trialState
	seen := map[string]bool{}
	add := func(id string, pl *planned) {
		if seen[id] {
			return
		}
		seen[id] = true
		ts := trialState{id: id}
		e := f.shards[id]
		switch {
		case f.rerunning(id):
			ts.row = f.completeRow(id)
			ts.status = f.liveStatus(id, &ts, s)
		case e != nil && e.row != nil:
			ts.row = *e.row
			ts.status = e.row.Status
			ts.complete = true
		case f.table[id] != nil && (e == nil || e.err == nil):
			ts.row = *f.table[id] // compacted, its shard since removed
			ts.status = ts.row.Status
			ts.complete = true
		default:
			ts.row = plannedRow(f.name, id, pl)
			ts.status = "pending"
			if e != nil && e.err != nil {
				ts.status, ts.row.Error = "damaged", e.err.Error()
			} else if f.lives[id] != nil {
				ts.status = f.liveStatus(id, &ts, s)
			}
			if pl == nil && ts.status == "pending" {
				return // a folder with no row nor plan entry: nothing to show
			}
		}
		ts.row.Status = ts.status
		out = append(out, ts)
	}
	byID := map[string]*planned{}
	for i := range f.planned {
		byID[f.planned[i].ID] = &f.planned[i]
		add(f.planned[i].ID, &f.planned[i])
	}
	// Trials outside the plan (a tune sweep's test trials, an older plan's
	// leftovers): in (index, ID) order.
	var rest []trialState
	start := len(out)
	for _, id := range slices.Sorted(mapsKeys(s.trialDirs)) {
		add(id, byID[id])
	}
	for id := range f.table {
		if !seen[id] {
			add(id, nil)
		}
	}
	rest = out[start:]
	slices.SortStableFunc(rest, func(a, b trialState) int {
		return cmp.Or(cmp.Compare(a.row.Index, b.row.Index), cmp.Compare(a.id, b.id))
	})
	return out
}

// plannedRow is the row of a trial that has no results yet: its identity
// and config from the plan, metrics absent.
func plannedRow(sweep, id string, pl *planned) results.TrialRow {
	r := results.TrialRow{Sweep: sweep, TrialID: id}
	if pl != nil {
		r.Index, r.Method, r.Rank, r.Task, r.Seed, r.Phase = pl.Index, pl.Method, pl.Rank, pl.Task, pl.Seed, pl.Phase
		r.Config = string(pl.config)
		if pl.Sweep != "" {
			r.Sweep = pl.Sweep
		}
	}
	r.ClearMetrics()
	return r
}

// shard returns the trial's complete shard, read afresh when its folder
// changed; nil when it has none.
func (f *folder) shard(id string, s *scan) (*results.Shard, error) {
	k, ok := s.trialDirs[id]
	if !ok {
		return nil, nil
	}
	if d := f.shardData[id]; d != nil && d.key.dir == k.dir {
		return d.shard, nil
	}
	sh, err := results.ReadShard(f.dir, id)
	if errors.Is(err, results.ErrIncomplete) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.shardData[id] = &shardData{key: k, shard: sh}
	return sh, nil
}

// liveStatus is the status of a trial shown from its live log: running
// while the folder's writer is alive, else killed; it sets ts's live
// reference (attempt, last step) or the log's read error.
func (f *folder) liveStatus(id string, ts *trialState, s *scan) string {
	l := f.lives[id]
	status := "killed"
	if s.writer.alive {
		status = "running"
	}
	if l.err != nil {
		ts.row.Error = l.err.Error()
		return status
	}
	ts.live = &liveRef{Attempt: l.live.Header.Attempt}
	for _, st := range l.live.Steps {
		ts.live.Step = max(ts.live.Step, st.Step)
	}
	return status
}

// completeRow is the trial's row from its shard, else from the table.
func (f *folder) completeRow(id string) results.TrialRow {
	if e := f.shards[id]; e != nil && e.row != nil {
		return *e.row
	}
	return *f.table[id]
}

// rerunning reports whether a trial with a complete row is being run
// again: its live log began after that row's trial ended (an ASHA
// promotion, or a forced rerun). The log then wins until the new shard
// lands. A log that began before is stale (a kill between the shard's
// write and the log's removal) and the row wins.
func (f *folder) rerunning(id string) bool {
	l := f.lives[id]
	if l == nil || l.err != nil || l.live == nil {
		return false
	}
	var ended time.Time
	switch e := f.shards[id]; {
	case e != nil && e.row != nil:
		ended = e.row.EndedAt
	case f.table[id] != nil && (e == nil || e.err == nil):
		ended = f.table[id].EndedAt
	default:
		return false
	}
	return !ended.IsZero() && l.live.Header.Started.After(ended)
}

// steps returns a trial's per-step rows and where they came from: its
// shard, else the compacted steps table, else its live log. A shard wins
// over a live log that began before the shard's trial ended (stale); a
// log that began after it is a rerun's and wins (see rerunning).
func (f *folder) steps(id string) (rows []results.StepRow, attempt int64, source string, err error) {
	s, err := f.scan()
	if err != nil {
		return nil, 0, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refresh(s); err != nil {
		return nil, 0, "", err
	}
	if f.rerunning(id) {
		l := f.lives[id]
		return l.live.Steps, int64(l.live.Header.Attempt), "live", nil
	}
	sh, err := f.shard(id, s)
	if err != nil {
		return nil, 0, "", err
	}
	if sh != nil {
		return sh.Steps, sh.Trial.Attempts, "shard", nil
	}
	if r := f.table[id]; r != nil {
		if f.stepTable == nil || f.stepsKey != s.steps {
			all, err := results.ReadSteps(filepath.Join(f.dir, results.StepsFile))
			if err != nil {
				return nil, 0, "", err
			}
			f.stepsKey, f.stepTable = s.steps, map[string][]results.StepRow{}
			for _, st := range all {
				f.stepTable[st.TrialID] = append(f.stepTable[st.TrialID], st)
			}
		}
		return f.stepTable[id], r.Attempts, "shard", nil
	}
	if l := f.lives[id]; l != nil {
		if l.err != nil {
			return nil, 0, "", l.err
		}
		return l.live.Steps, int64(l.live.Header.Attempt), "live", nil
	}
	return nil, 0, "", errNotFound
}

// spectra returns a trial's spectrum rows and its intruder thresholds.
func (f *folder) spectra(id string) ([]results.SpectrumRow, []float64, error) {
	s, err := f.scan()
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refresh(s); err != nil {
		return nil, nil, err
	}
	eps := func(r *results.TrialRow) []float64 {
		out := []float64{}
		for _, c := range r.Intruders {
			out = append(out, c.Epsilon)
		}
		return out
	}
	sh, err := f.shard(id, s)
	if err != nil {
		return nil, nil, err
	}
	if sh != nil {
		return sh.Spectra, eps(&sh.Trial), nil
	}
	if r := f.table[id]; r != nil {
		if f.specTable == nil || f.specKey != s.spectra {
			all, err := results.ReadSpectra(filepath.Join(f.dir, results.SpectraFile))
			if err != nil {
				return nil, nil, err
			}
			f.specKey, f.specTable = s.spectra, map[string][]results.SpectrumRow{}
			for _, sp := range all {
				f.specTable[sp.TrialID] = append(f.specTable[sp.TrialID], sp)
			}
		}
		return f.specTable[id], eps(r), nil
	}
	if f.lives[id] != nil {
		return nil, []float64{}, nil // running: no spectra yet
	}
	return nil, nil, errNotFound
}

var errNotFound = errors.New("not found")
