package runner

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"peftbench/sweeps"
	"peftbench/trainer"
)

// Command trains each trial by running an external program that speaks the
// trainer protocol (version trainer.Protocol): it reads the trial from the
// trainer.TrialFile named by $PEFTBENCH_TRIAL, writes artifacts under
// $PEFTBENCH_OUT, uses the GPUs in $CUDA_VISIBLE_DEVICES, and prints one
// JSON object per line on stdout.
// Its stderr goes to the trial folder's stderr.log, bounded to MaxLog bytes
// (head and tail kept). The program runs in its own process group; a
// timeout or cancellation kills the whole group, and so does the program's
// exit, so no child outlives its trial.
type Command struct {
	Path string            // resolved program
	Args []string          // arguments after the program
	Env  map[string]string // added to the runner's environment
	Dir  string            // working directory: the sweep file's folder
	// MaxLog bounds the stderr kept per trial; default 1 MiB.
	MaxLog int
	// WaitDelay is how long to wait for the program's output to close once
	// it was killed; default 5s.
	WaitDelay time.Duration
	// Linger is how long the runner keeps reading the program's stdout and
	// stderr after the program exited (and its process group was killed),
	// for a child that left the group and holds them open; then they are
	// closed, which is their end: a summary that arrived stands. Default 2s.
	Linger time.Duration
}

// NewCommand returns the Command trainer of a [trainer] kind = "command"
// table. A program named with a slash ("./train.sh", "bin/train") is
// resolved against dir, the sweep file's folder, and never looked up on
// PATH; a bare name ("python3") is looked up on PATH. Path is absolute.
func NewCommand(spec sweeps.TrainerSpec, dir string) (*Command, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errors.New("runner: [trainer] kind = \"command\" needs a command")
	}
	prog := spec.Command[0]
	if strings.ContainsRune(prog, '/') && !filepath.IsAbs(prog) {
		// Absolute, so that LookPath checks this file and never searches
		// PATH (filepath.Join(".", "./prog") is "prog", a bare name).
		abs, err := filepath.Abs(filepath.Join(dir, prog))
		if err != nil {
			return nil, fmt.Errorf("runner: trainer command %s: %w", prog, err)
		}
		prog = abs
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("runner: trainer command: %w", err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &Command{Path: path, Args: spec.Command[1:], Env: spec.Env, Dir: dir}, nil
}

// programID names the program a trial runs for its log: its absolute path,
// the file it resolves to when that is a symbolic link, and the SHA-256 of
// its content.
func programID(path string) string {
	s := path
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		s += " (" + real + ")"
	}
	f, err := os.Open(path)
	if err != nil {
		return s + " sha256 unknown: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return s + " sha256 unknown: " + err.Error()
	}
	return s + " sha256 " + hex.EncodeToString(h.Sum(nil))
}

// message is one line of a command trainer's stdout.
type message struct {
	Type    string                     `json:"type"`
	Step    *int                       `json:"step"`
	Split   string                     `json:"split"`
	Name    string                     `json:"name"`
	Value   json.RawMessage            `json:"value"`
	Metrics map[string]json.RawMessage `json:"metrics"`
	Path    string                     `json:"path"`
	Msg     string                     `json:"msg"`
	Tensor  string                     `json:"tensor"`
}

// Run runs the program for one trial.
func (c *Command) Run(ctx context.Context, t sweeps.Trial, dir string, r Reporter) error {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	devices := Devices(ctx)
	specPath := filepath.Join(absDir, "trial.json")
	tf := trainer.TrialFile{Protocol: trainer.Protocol, Trial: t, Threads: t.Train.Threads, Devices: devices, Out: absDir,
		StopAfter: trainer.StopAfter(ctx)}
	if err := trainer.WriteTrialFile(specPath, tf); err != nil {
		return err
	}

	r.Log("runner: trainer program " + programID(c.Path))
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(),
		"PEFTBENCH_PROTOCOL="+strconv.Itoa(trainer.Protocol),
		"PEFTBENCH_TRIAL="+specPath,
		"PEFTBENCH_OUT="+absDir,
		"PEFTBENCH_THREADS="+strconv.Itoa(max(t.Train.Threads, 1)),
		"OMP_NUM_THREADS="+strconv.Itoa(max(t.Train.Threads, 1)),
	)
	if devices != nil {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+strings.Join(devices, ","))
	}
	for _, k := range sortedKeys(c.Env) {
		cmd.Env = append(cmd.Env, k+"="+c.Env[k])
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = c.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	maxLog := c.MaxLog
	if maxLog <= 0 {
		maxLog = 1 << 20
	}
	stderr := &boundedBuffer{max: maxLog}
	// The trainer writes to pipes of our own rather than through exec's
	// copying goroutines, so that its exit, not the closing of its output
	// (which children it left behind may hold open), ends the wait.
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("starting trainer: %w", err)
	}
	msgs := make(chan error, 1)
	go func() {
		err := readMessages(outR, r)
		if err != nil && !errors.Is(err, errNoSummary) {
			killGroup(cmd) // a trainer that broke the protocol or diverged is not waited for
		}
		msgs <- err
	}()
	logged := make(chan struct{})
	go func() {
		io.Copy(stderr, errR)
		close(logged)
	}()

	werr := cmd.Wait()
	killGroup(cmd) // children left behind by the trainer die with it
	linger := c.Linger
	if linger <= 0 {
		linger = 2 * time.Second
	}
	var perr error
	select {
	case perr = <-msgs:
		<-logged
	case <-time.After(linger):
		// A child escaped the process group and holds the pipes open. The
		// trainer has exited: what it wrote was read, the rest is not its
		// own. End both streams here (a read past its deadline ends
		// readMessages as the end of the stream would).
		now := time.Now()
		if outR.SetReadDeadline(now) != nil {
			outR.Close()
		}
		if errR.SetReadDeadline(now) != nil {
			errR.Close()
		}
		perr = <-msgs
		<-logged
		r.Log("runner: the trainer's output stayed open after it exited (a child outside its process group holds it); closed it " + linger.String() + " after the exit")
	}
	outR.Close()
	errR.Close()
	if err := os.WriteFile(filepath.Join(absDir, "stderr.log"), stderr.Bytes(), 0o644); err != nil {
		r.Log("runner: writing stderr.log: " + err.Error())
	}

	var de *DivergedError
	switch {
	case errors.As(perr, &de):
		return de
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case perr != nil && !errors.Is(perr, errNoSummary):
		return fmt.Errorf("trainer protocol: %w", perr)
	case werr != nil:
		if tail := stderr.Tail(3); tail != "" {
			return fmt.Errorf("trainer %s: %w; stderr ends:\n%s", filepath.Base(c.Path), werr, tail)
		}
		return fmt.Errorf("trainer %s: %w", filepath.Base(c.Path), werr)
	case perr != nil:
		return fmt.Errorf("trainer %s exited 0 without a summary line", filepath.Base(c.Path))
	}
	return nil
}

var errNoSummary = errors.New("no summary")

// endedByRunner reports whether a read error is the runner ending the
// trainer's stdout after the trainer exited (a read deadline, or the pipe
// closed where deadlines are not supported): the end of the stream.
func endedByRunner(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed)
}

// readMessages reads the trainer's stdout to its end, forwarding messages to
// r. It stops at the first malformed line or a diverged message.
func readMessages(stdout io.Reader, r Reporter) error {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	summary := false
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var m message
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("stdout line %d: %v: %.200q", line, err, b)
		}
		if err := handle(&m, r); err != nil {
			if de := (*DivergedError)(nil); errors.As(err, &de) {
				return err
			}
			return fmt.Errorf("stdout line %d: %v", line, err)
		}
		if m.Type == "summary" {
			summary = true
		}
	}
	if err := sc.Err(); err != nil && !endedByRunner(err) {
		return fmt.Errorf("stdout: %w", err)
	}
	if !summary {
		return errNoSummary
	}
	return nil
}

func handle(m *message, r Reporter) error {
	switch m.Type {
	case "metric":
		if m.Step == nil || m.Name == "" || m.Split == "" {
			return errors.New(`metric needs "step", "split" and "name"`)
		}
		v, err := number(m.Value)
		if err != nil {
			return fmt.Errorf("metric %s: %v", m.Name, err)
		}
		r.Step(*m.Step, m.Split, m.Name, v)
	case "summary":
		if len(m.Metrics) == 0 {
			return errors.New(`summary needs "metrics"`)
		}
		names := make(map[string]string, len(m.Metrics))
		for k := range m.Metrics {
			names[k] = k
		}
		for _, k := range sortedKeys(names) {
			v, err := number(m.Metrics[k])
			if err != nil {
				return fmt.Errorf("summary %s: %v", k, err)
			}
			r.Summary(k, v)
		}
	case "artifact":
		if m.Name == "" || m.Path == "" {
			return errors.New(`artifact needs "name" and "path"`)
		}
		r.Artifact(m.Name, m.Path)
	case "log":
		r.Log(m.Msg)
	case "diverged":
		if m.Step == nil {
			return errors.New(`diverged needs "step"`)
		}
		return &DivergedError{Step: *m.Step, Tensor: m.Tensor}
	default:
		return fmt.Errorf("unknown message type %q", m.Type)
	}
	return nil
}

// number decodes a JSON number, or one of the strings "NaN", "Inf", "-Inf"
// that JSON cannot spell as numbers.
func number(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 {
		return 0, errors.New(`missing "value"`)
	}
	if string(raw) == "null" {
		return 0, errors.New(`value is null (write "NaN" for a non-finite number)`)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "NaN", "nan":
			return math.NaN(), nil
		case "Inf", "+Inf", "inf":
			return math.Inf(1), nil
		case "-Inf", "-inf":
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("value %s is not a number", raw)
}

// killGroup kills the command's process group.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// boundedBuffer keeps the first and last max/2 bytes written to it.
type boundedBuffer struct {
	mu      sync.Mutex
	max     int
	head    []byte
	ring    []byte // the latest bytes once head is full, a ring of cap max-max/2
	pos     int    // next write position in ring once it is full
	full    bool
	dropped int64
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	half := b.max / 2
	if room := half - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	size := b.max - half
	if size <= 0 {
		b.dropped += int64(len(p))
		return n, nil
	}
	if len(p) > size {
		b.dropped += int64(len(p) - size)
		if b.full {
			b.dropped += int64(size)
		} else {
			b.dropped += int64(len(b.ring))
		}
		p = p[len(p)-size:]
		b.ring = append(b.ring[:0], p...)
		b.pos, b.full = 0, true
		return n, nil
	}
	for len(p) > 0 {
		if !b.full {
			k := min(size-len(b.ring), len(p))
			b.ring = append(b.ring, p[:k]...)
			p = p[k:]
			if len(b.ring) == size {
				b.full, b.pos = true, 0
			}
			continue
		}
		k := copy(b.ring[b.pos:], p)
		b.dropped += int64(k)
		p = p[k:]
		b.pos = (b.pos + k) % size
	}
	return n, nil
}

// Bytes returns the kept bytes, with a marker where bytes were dropped.
func (b *boundedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]byte(nil), b.head...)
	if b.dropped > 0 {
		out = fmt.Appendf(out, "\n… %d bytes of stderr dropped …\n", b.dropped)
	}
	if b.full {
		out = append(out, b.ring[b.pos:]...)
		return append(out, b.ring[:b.pos]...)
	}
	return append(out, b.ring...)
}

// Tail returns the last n non-empty lines kept.
func (b *boundedBuffer) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(string(b.Bytes()), "\n"), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			keep = append([]string{lines[i]}, keep...)
		}
	}
	return strings.Join(keep, "\n")
}
