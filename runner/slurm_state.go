package runner

import (
	"bufio"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"peftbench/internal/atomicfile"
	"peftbench/sweeps"
)

// The files of a submitted sweep, in its results folder (see slurm.go).
const (
	SlurmDir       = ".slurm"
	PlanFile       = "plan.json"
	slurmPlanFile  = "plan.gob"
	slurmStateFile = "state.json"
	slurmBinary    = "bench"
	slurmLock      = "lock"
)

// slurmState is DIR/.slurm/state.json.
type slurmState struct {
	Sweep string     `json:"sweep"`
	Jobs  []slurmJob `json:"jobs"`
}

// slurmJob is one submitted array.
type slurmJob struct {
	ID        string    `json:"id"`      // array job ID
	Indices   []int     `json:"indices"` // plan indices it runs
	Offset    int       `json:"offset"`  // task ID = plan index - Offset
	Attempt   int       `json:"attempt"` // attempt number of every index in it
	Script    string    `json:"script"`
	Submitted time.Time `json:"submitted"`
}

// IsSlurmSweep reports whether dir holds a sweep submitted to Slurm.
func IsSlurmSweep(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, SlurmDir, slurmStateFile))
	return err == nil
}

// ReadPlan reads the exact plan saved in the folder of a sweep submitted to
// run outside this process (by RunSlurm), for the tasks that run its trials
// (RunTrial).
func ReadPlan(dir string) (*sweeps.Plan, error) {
	f, err := os.Open(filepath.Join(dir, SlurmDir, slurmPlanFile))
	if err != nil {
		return nil, fmt.Errorf("runner: %s is not a sweep submitted to Slurm: %w", dir, err)
	}
	defer f.Close()
	plan := new(sweeps.Plan)
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(plan); err != nil {
		return nil, fmt.Errorf("runner: %s: %w", f.Name(), err)
	}
	return plan, nil
}

func init() {
	// Option values are TOML scalars or lists of them; gob needs the
	// interface types it may meet registered.
	gob.Register([]any{})
	gob.Register(map[string]any{})
}

// writeAtomic writes path atomically with mode (scripts and the copied
// binary are 0755), through the project's one atomic writer.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.WriteFileMode(path, data, mode); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	return nil
}

// lock makes this process the sweep's only driver until unlock.
func (d *slurmDriver) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.slurmDir(), slurmLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: another bench process is following %s", d.r.dir)
	}
	return func() { f.Close() }, nil
}

func (d *slurmDriver) loadState() error {
	data, err := os.ReadFile(filepath.Join(d.slurmDir(), slurmStateFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &d.state); err != nil {
		return fmt.Errorf("runner: %s: %w", filepath.Join(d.slurmDir(), slurmStateFile), err)
	}
	return nil
}

func (d *slurmDriver) saveState() error {
	data, err := json.MarshalIndent(&d.state, "", "  ")
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	return writeAtomic(filepath.Join(d.slurmDir(), slurmStateFile), append(data, '\n'), 0o644)
}

// latest returns the last array that holds index.
func (d *slurmDriver) latest(index int) (slurmJob, bool) {
	for i := len(d.state.Jobs) - 1; i >= 0; i-- {
		if slices.Contains(d.state.Jobs[i].Indices, index) {
			return d.state.Jobs[i], true
		}
	}
	return slurmJob{}, false
}

func (d *slurmDriver) jobIDs() []string {
	var ids []string
	for _, j := range d.state.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}
