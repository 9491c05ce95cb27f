package runner

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"peftbench/results"
	"peftbench/trainer"
)

// Bar draws a sweep's progress on the last line of a terminal: counts, the
// time elapsed and left (Event.ETA), the trials waiting for a base model
// and the running trials by label with their step. It owns that line:
// whatever else is printed while it is drawn — its reports of trials that
// did not end ok and of retries, and the lines written to it as an
// io.Writer (an executor's Options.Log, the base-model cache's Log) — is
// printed by clearing the bar, writing whole lines and drawing it again,
// so that no line of the terminal holds both bar text and other text.
//
// Use Event as Options.Events and the Bar itself as Options.Log; Tick
// redraws it every second, so that the elapsed time moves between events;
// Close ends it. A Bar is safe for concurrent use.
type Bar struct {
	// Width is the terminal's width in columns; the bar is cut to one
	// column less (a line that wraps cannot be cleared with \r). 0 is 80.
	Width int
	// Now is the clock of Tick's redraws; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	w       io.Writer
	drawn   bool   // the bar is on the terminal's current line
	partial []byte // written bytes after their last newline, until it comes
	started bool   // sweep_started seen, sweep_finished not
	paused  bool   // a prompt holds the line (Pause)
	start   time.Time
	p       Progress
	eta     *float64 // the last event's ETA in seconds, at etaAt
	etaAt   time.Time
	running []*barTrial // in start order
	stop    chan struct{}
}

type barTrial struct {
	id, label, task, phase string
	step, steps            int
}

// NewBar returns a Bar drawing on the terminal w.
func NewBar(w io.Writer) *Bar { return &Bar{w: w} }

const barClear = "\r\x1b[K" // carriage return, erase to the end of the line

// Event is the Bar's Options.Events sink.
func (b *Bar) Event(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Type != EventTrialStep {
		b.p, b.eta, b.etaAt = ev.Progress, ev.ETA, ev.Time
	}
	var msg string // a line to print above the bar
	switch ev.Type {
	case EventSweepStarted:
		b.started, b.start, b.running = true, ev.Time, nil
	case EventTrialStarted:
		if b.find(ev.Trial.ID) < 0 {
			b.running = append(b.running, &barTrial{id: ev.Trial.ID, label: ev.Trial.String(), task: ev.Trial.Task, steps: ev.Trial.Steps})
		}
	case EventTrialPhase:
		if i := b.find(ev.Trial.ID); i >= 0 {
			b.running[i].phase = ev.Phase
		}
	case EventTrialStep:
		if i := b.find(ev.Trial.ID); i >= 0 && ev.Metric != nil {
			b.running[i].step = max(b.running[i].step, ev.Metric.Step)
		}
		return // Tick shows it: a redraw per step would flood the terminal
	case EventTrialRetry:
		msg = fmt.Sprintf("retry     %s %s (attempt %d in %s): %s\n", ev.Trial.ID, ev.Trial, ev.Attempt, seconds(ev.Seconds), firstLine(ev.Error))
	case EventTrialFinished:
		if i := b.find(ev.Trial.ID); i >= 0 {
			b.running = slices.Delete(b.running, i, i+1)
		}
		if ev.Status != results.StatusOK && ev.Status != results.StatusStopped {
			msg = fmt.Sprintf("%-9s %s %s: %s\n", ev.Status, ev.Trial.ID, ev.Trial, firstLine(ev.Error))
		}
	case EventSweepFinished:
		b.started = false
		msg = fmt.Sprintf("sweep %s: %s in %s\n", ev.Sweep, counts(ev.Progress), ev.Time.Sub(b.start).Round(time.Second))
	}
	if msg != "" {
		b.lines(msg, ev.Time)
	} else if b.started {
		b.draw(ev.Time)
	}
}

// Write prints log lines above the bar. Bytes after the last newline are
// held until their line ends (or Close), so that a line written in pieces
// is not split by a redraw.
func (b *Bar) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	i := bytes.LastIndexByte(b.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	s := string(b.partial[:i+1])
	b.partial = append(b.partial[:0], b.partial[i+1:]...)
	if err := b.lines(s, b.now()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lines prints whole lines s: the bar cleared first, drawn again (as at
// now) after.
func (b *Bar) lines(s string, now time.Time) error {
	if b.drawn {
		io.WriteString(b.w, barClear)
		b.drawn = false
	}
	_, err := io.WriteString(b.w, s)
	if b.started {
		b.draw(now)
	}
	return err
}

// Tick redraws the bar every d until Close, so that the elapsed time, the
// ETA and the running trials' steps move between events.
func (b *Bar) Tick(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		return
	}
	b.stop = make(chan struct{})
	go func(stop chan struct{}) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				b.mu.Lock()
				if b.started {
					b.draw(b.now())
				}
				b.mu.Unlock()
			}
		}
	}(b.stop)
}

// Pause clears the bar and draws it no more until Resume, for a prompt
// that owns the line meanwhile; lines written are still printed.
func (b *Bar) Pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		io.WriteString(b.w, barClear)
		b.drawn = false
	}
	b.paused = true
}

// Resume ends a Pause.
func (b *Bar) Resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused = false
}

// Close stops Tick, prints a held partial line and leaves the cursor on a
// line of its own.
func (b *Bar) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		close(b.stop)
		b.stop = nil
	}
	b.started = false
	if len(b.partial) > 0 {
		s := string(b.partial) + "\n"
		b.partial = b.partial[:0]
		b.lines(s, b.now())
	}
	if b.drawn {
		b.drawn = false
		_, err := io.WriteString(b.w, "\n") // keep the last state on screen
		return err
	}
	return nil
}

func (b *Bar) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Bar) find(id string) int {
	return slices.IndexFunc(b.running, func(t *barTrial) bool { return t.id == id })
}

// draw writes the bar over the current line.
func (b *Bar) draw(now time.Time) {
	if b.paused {
		return
	}
	io.WriteString(b.w, barClear+cut(b.line(now), b.width()-1))
	b.drawn = true
}

func (b *Bar) width() int {
	if b.Width > 0 {
		return b.Width
	}
	return 80
}

// line is the bar's text at now.
func (b *Bar) line(now time.Time) string {
	const width = 20
	p := b.p
	done := p.Skipped + p.Done
	filled := 0
	if p.Total > 0 {
		filled = width * done / p.Total
	}
	var s strings.Builder
	fmt.Fprintf(&s, "[%s%s] %d/%d  ok %d  failed %d  diverged %d  %s",
		strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, p.Total,
		p.OK, p.Failed+p.Timeout, p.Diverged, now.Sub(b.start).Round(time.Second))
	if b.eta == nil {
		s.WriteString("  ETA unknown")
	} else {
		left := time.Duration(*b.eta*float64(time.Second)) - now.Sub(b.etaAt)
		fmt.Fprintf(&s, "  ETA %s", max(left, 0).Round(time.Second))
	}
	var tasks []string
	waiting := map[string]int{}
	var training []string
	for _, t := range b.running {
		if t.phase == trainer.PhaseBase {
			if waiting[t.task] == 0 {
				tasks = append(tasks, t.task)
			}
			waiting[t.task]++
			continue
		}
		l := t.label
		if t.step > 0 && t.steps > 0 {
			l += fmt.Sprintf(" %d/%d", t.step, t.steps)
		}
		training = append(training, l)
	}
	for i, task := range tasks {
		tasks[i] = fmt.Sprintf("%s (%d %s)", task, waiting[task], plural(waiting[task], "trial waits", "trials wait"))
	}
	if len(tasks) > 0 {
		s.WriteString(" | base model: " + strings.Join(tasks, ", "))
	}
	if len(training) > 0 {
		fmt.Fprintf(&s, " | running %d: %s", len(training), strings.Join(training, "; "))
	}
	return s.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cut shortens s to at most n runes (each a terminal column), ending it
// with "…" when it was longer.
func cut(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
