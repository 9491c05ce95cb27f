package runner

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"peftbench/results"
	"peftbench/sweeps"
)

// MaxArrayTasks is the most tasks one submitted array holds and the bound on
// array task IDs (Slurm's default MaxArraySize is 1001). Larger sweeps are
// submitted as several arrays; a task adds its array's offset to its ID.
var MaxArrayTasks = 1000

// prepare creates the results folder and writes what the tasks read.
func (d *slurmDriver) prepare() error {
	dir := d.r.dir
	if err := os.MkdirAll(filepath.Join(d.slurmDir(), "logs"), 0o755); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, results.TrialsDir), 0o755); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	started := d.r.now().UTC()
	if d.r.prev != nil && d.r.prev.SourceHash == d.plan.SourceHash && !d.r.prev.Started.IsZero() {
		started = d.r.prev.Started
	}
	man, err := d.r.manifest(started)
	if err != nil {
		return err
	}
	if err := results.WriteManifest(dir, man); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if d.r.prev != nil && d.r.prev.SourceHash != d.plan.SourceHash {
		if err := d.r.dropStale(); err != nil {
			return err
		}
		os.Remove(filepath.Join(d.slurmDir(), slurmStateFile)) // arrays of the old sweep
	}
	if err := d.loadState(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	// The plan, absolute paths so tasks resolve them from any directory.
	p := *d.plan
	if p.File != "" {
		if abs, err := filepath.Abs(p.File); err == nil {
			p.File = abs
		}
	}
	*d.plan = p
	js, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		return fmt.Errorf("runner: encoding plan: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, PlanFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var gb bytes.Buffer
	if err := gob.NewEncoder(&gb).Encode(&p); err != nil {
		return fmt.Errorf("runner: encoding plan: %w", err)
	}
	if err := writeAtomic(filepath.Join(d.slurmDir(), slurmPlanFile), gb.Bytes(), 0o644); err != nil {
		return err
	}

	if len(d.opts.Worker) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("runner: slurm: finding the bench binary: %w", err)
		}
		bin, err := os.ReadFile(self)
		if err != nil {
			return fmt.Errorf("runner: slurm: copying the bench binary: %w", err)
		}
		dst := filepath.Join(d.slurmDir(), slurmBinary)
		if err := writeAtomic(dst, bin, 0o755); err != nil {
			return err
		}
		d.opts.Worker = []string{dst}
	}
	if msg := sharedFS(dir); msg != "" {
		d.logf("%s", msg)
	}
	return nil
}

// Filesystem magic numbers (statfs f_type) of filesystems a cluster's nodes
// commonly share.
var sharedMagic = map[int64]string{
	0x6969:     "nfs",
	0x0bd00bd0: "lustre",
	0x47504653: "gpfs",
	0x19830326: "beegfs",
	0xff534d42: "cifs",
	0xfe534d42: "smb2",
	0x00c36400: "cephfs",
	0x65735546: "fuse",
	0x013111a8: "ibrix",
	0x5346414f: "afs",
}

const tmpfsMagic = 0x01021994

// sharedFS says in one line whether dir looks shared between nodes; bench
// cannot know for sure, so it only warns.
func sharedFS(dir string) string {
	abs, _ := filepath.Abs(dir)
	var st syscall.Statfs_t
	if err := syscall.Statfs(abs, &st); err != nil {
		return fmt.Sprintf("cannot tell which filesystem holds %s (%v); the nodes must see it", abs, err)
	}
	typ := int64(st.Type) & 0xffffffff
	if name, ok := sharedMagic[typ]; ok {
		return fmt.Sprintf("%s is on %s, shared with the nodes if mounted there", abs, name)
	}
	if typ == tmpfsMagic || abs == "/tmp" || strings.HasPrefix(abs, "/tmp/") {
		return fmt.Sprintf("warning: %s is under /tmp or on tmpfs, which nodes do not share; tasks on other nodes will not find it (fine on a one-node cluster)", abs)
	}
	return fmt.Sprintf("warning: %s is on a local filesystem (type %#x); tasks on other nodes will not find it unless it is mounted there too", abs, typ)
}

// submitArgs are the sbatch arguments of an array, script path last
// (omitted when empty, for a script on stdin).
func (d *slurmDriver) submitArgs(job slurmJob, script string) []string {
	ex := d.plan.Executor
	ids := make([]int, len(job.Indices))
	for i, x := range job.Indices {
		ids[i] = x - job.Offset
	}
	array := ArraySpec(ids, ex.Throttle)
	args := []string{"--parsable", "--array=" + array, "--job-name=peftbench-" + d.plan.Name}
	if d.r.dir != "" {
		args = append(args, "--output="+filepath.Join(d.slurmDir(), "logs", "%A_%a.out"))
	}
	if wd, err := os.Getwd(); err == nil {
		args = append(args, "--chdir="+wd)
	}
	if ex.Partition != "" {
		args = append(args, "--partition="+ex.Partition)
	}
	if ex.TimeLimit != "" {
		args = append(args, "--time="+ex.TimeLimit)
	}
	args = append(args, "--cpus-per-task="+strconv.Itoa(max(ex.CPUsPerTask, 1)))
	if ex.MemPerTask != "" {
		args = append(args, "--mem="+ex.MemPerTask)
	}
	if ex.GPUsPerTask > 0 {
		args = append(args, "--gpus-per-task="+strconv.Itoa(ex.GPUsPerTask))
	}
	args = append(args, ex.SbatchArgs...)
	if script != "" {
		args = append(args, script)
	}
	return args
}

// ArraySpec is sbatch's --array value for task IDs: sorted runs as ranges,
// e.g. "0-11%2" or "3,7-9". throttle ≤ 0 adds no %N.
func ArraySpec(ids []int, throttle int) string {
	ids = slices.Clone(ids)
	sort.Ints(ids)
	ids = slices.Compact(ids)
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	if throttle > 0 {
		b.WriteString("%" + strconv.Itoa(throttle))
	}
	return b.String()
}

// script is the batch script of a job: the setup lines, then the worker.
func (d *slurmDriver) script(job slurmJob, args []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# peftbench sweep %s, attempt %d of indices %s\n", d.plan.Name, job.Attempt, ArraySpec(job.Indices, 0))
	fmt.Fprintf(&b, "# submitted as: sbatch %s\n", strings.Join(args, " "))
	b.WriteString("set -eo pipefail\n")
	if s := strings.TrimSpace(d.plan.Executor.Setup); s != "" {
		b.WriteString(s + "\n")
	}
	var cmd []string
	for _, w := range d.opts.Worker {
		cmd = append(cmd, shellQuote(w))
	}
	index := `"$SLURM_ARRAY_TASK_ID"`
	if job.Offset > 0 {
		index = fmt.Sprintf(`"$((SLURM_ARRAY_TASK_ID + %d))"`, job.Offset)
	}
	cmd = append(cmd, "trial", "--sweep", shellQuote(d.r.dir), "--index", index, "--attempt", strconv.Itoa(job.Attempt))
	b.WriteString("exec " + strings.Join(cmd, " ") + "\n")
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// submit sends indices as arrays (several when they span more than
// MaxArrayTasks IDs) and records them.
func (d *slurmDriver) submit(ctx context.Context, indices []int, attempt int) error {
	if len(indices) == 0 {
		return nil
	}
	sort.Ints(indices)
	chunks := map[int][]int{}
	for _, i := range indices {
		chunks[i/MaxArrayTasks*MaxArrayTasks] = append(chunks[i/MaxArrayTasks*MaxArrayTasks], i)
	}
	offsets := make([]int, 0, len(chunks))
	for o := range chunks {
		offsets = append(offsets, o)
	}
	sort.Ints(offsets)
	for _, off := range offsets {
		job := slurmJob{Indices: chunks[off], Offset: off, Attempt: attempt}
		n := len(d.state.Jobs) + 1
		job.Script = filepath.Join(d.slurmDir(), fmt.Sprintf("array-%d.sh", n))
		args := d.submitArgs(job, job.Script)
		if err := writeAtomic(job.Script, []byte(d.script(job, args)), 0o755); err != nil {
			return err
		}
		out, err := sbatchOut(ctx, args, "", d.plan.Executor)
		if err != nil {
			return err
		}
		id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
		if _, err := strconv.Atoi(id); err != nil {
			return fmt.Errorf("runner: slurm: sbatch printed %q, not a job ID", strings.TrimSpace(out))
		}
		job.ID = id
		job.Submitted = d.r.now().UTC()
		d.state.Jobs = append(d.state.Jobs, job)
		if err := d.saveState(); err != nil {
			return err
		}
		for _, i := range job.Indices {
			if d.started[i] {
				d.r.mu.Lock()
				d.r.progress.Running--
				d.r.mu.Unlock()
			}
			d.started[i] = false
			delete(d.missing, i)
		}
		d.logf("submitted array %s: %d trials (--array=%s), attempt %d", id, len(job.Indices), ArraySpec(ids(job), d.plan.Executor.Throttle), attempt)
	}
	return nil
}

func ids(job slurmJob) []int {
	out := make([]int, len(job.Indices))
	for i, x := range job.Indices {
		out[i] = x - job.Offset
	}
	return out
}

// slurmTimeout bounds each Slurm command.
const slurmTimeout = time.Minute

func sbatch(ctx context.Context, args []string, stdin string, ex sweeps.Executor) error {
	_, err := sbatchOut(ctx, args, stdin, ex)
	return err
}

// sbatchOut runs sbatch and turns its complaints into one clear error.
func sbatchOut(ctx context.Context, args []string, stdin string, ex sweeps.Executor) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, slurmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sbatch", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", sbatchError(stderr.String(), err, ex)
	}
	return stdout.String(), nil
}

// sbatchError makes an error of sbatch's stderr, naming the [executor] key
// at fault where the message says which.
func sbatchError(stderr string, err error, ex sweeps.Executor) error {
	var msgs []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if m, ok := strings.CutPrefix(line, "sbatch: error: "); ok {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		if s := strings.TrimSpace(stderr); s != "" {
			msgs = append(msgs, firstLine(s))
		} else {
			msgs = append(msgs, err.Error())
		}
	}
	msg := strings.Join(msgs, "; ")
	low := strings.ToLower(msg)
	hint := ""
	switch {
	case strings.Contains(low, "partition"):
		hint = fmt.Sprintf(" ([executor] partition = %q; `sinfo -s` lists the partitions)", ex.Partition)
	case strings.Contains(low, "time limit"):
		hint = fmt.Sprintf(" ([executor] time_limit = %q)", ex.TimeLimit)
	case strings.Contains(low, "memory"):
		hint = fmt.Sprintf(" ([executor] mem_per_task = %q)", ex.MemPerTask)
	case strings.Contains(low, "gres") || strings.Contains(low, "gpu"):
		hint = fmt.Sprintf(" ([executor] gpus_per_task = %d)", ex.GPUsPerTask)
	case strings.Contains(low, "array"):
		hint = fmt.Sprintf(" ([executor] throttle = %d; MaxArraySize may be below %d)", ex.Throttle, MaxArrayTasks)
	}
	return fmt.Errorf("runner: slurm: sbatch refused the job array: %s%s", msg, hint)
}
