package runner

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// term is a fake terminal: it keeps the rows a real one would show for
// the bytes written, interpreting \r, \n (as the tty's \r\n) and the
// erase-to-end-of-line sequence \x1b[K; other escape sequences fail the
// test.
type term struct {
	t    *testing.T
	rows [][]rune
	col  int
}

func newTerm(t *testing.T) *term { return &term{t: t, rows: [][]rune{nil}} }

func (m *term) Write(p []byte) (int, error) {
	s := string(p)
	for len(s) > 0 {
		if strings.HasPrefix(s, "\x1b[K") {
			row := &m.rows[len(m.rows)-1]
			*row = (*row)[:min(m.col, len(*row))]
			s = s[3:]
			continue
		}
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		row := &m.rows[len(m.rows)-1]
		switch r {
		case '\x1b':
			m.t.Fatalf("unexpected escape sequence in %q", p)
		case '\r':
			m.col = 0
		case '\n':
			m.rows = append(m.rows, nil)
			m.col = 0
		default:
			for len(*row) < m.col {
				*row = append(*row, ' ')
			}
			if m.col < len(*row) {
				(*row)[m.col] = r
			} else {
				*row = append(*row, r)
			}
			m.col++
		}
	}
	return len(p), nil
}

func (m *term) screen() []string {
	var out []string
	for _, r := range m.rows {
		out = append(out, string(r))
	}
	return out
}

// barRow matches a row that starts with the bar.
var barRow = regexp.MustCompile(`^\[[#-]+\] `)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func tref(id string, label string, steps int) *TrialRef {
	return &TrialRef{ID: id, Method: "lora", Rank: 4, Task: "mlp", Steps: steps, Label: label}
}

func secs(s float64) *float64 { return &s }

// TestBarLineDiscipline: whatever is printed while the bar is drawn (log
// lines whole, in pieces or several at once, trials that failed, retries,
// lines held over Close, lines during a prompt), no terminal row holds bar
// text and other text, every log line is on a row of its own, and the bar
// never wraps.
func TestBarLineDiscipline(t *testing.T) {
	start := Event{Type: EventSweepStarted, Time: at(0), Sweep: "s", Progress: Progress{Total: 3}}
	run := Event{Type: EventTrialStarted, Time: at(1), Trial: tref("a1", "lora r=4 mlp lr=1e-3 seed=0", 100), Progress: Progress{Total: 3, Running: 1}}
	type step func(b *Bar)
	ev := func(e Event) step { return func(b *Bar) { b.Event(e) } }
	log := func(s string) step { return func(b *Bar) { fmt.Fprint(b, s) } }
	for _, c := range []struct {
		name  string
		width int
		steps []step
		logs  []string // the rows other than the bar's, in order
	}{
		{"a log line while drawn", 0, []step{ev(start), ev(run), log("LOG-1 slurm: submitted\n")},
			[]string{"LOG-1 slurm: submitted"}},
		{"a line in two pieces across a redraw", 0, []step{ev(start), log("LOG-1 first "), ev(run), log("half\n")},
			[]string{"LOG-1 first half"}},
		{"two lines in one write", 0, []step{ev(start), ev(run), log("LOG-1 a\nLOG-2 b\n")},
			[]string{"LOG-1 a", "LOG-2 b"}},
		{"a log line before the bar", 0, []step{log("LOG-0 warning\n"), ev(start), ev(run)},
			[]string{"LOG-0 warning"}},
		{"a failed trial and a retry", 0, []step{ev(start), ev(run),
			ev(Event{Type: EventTrialRetry, Time: at(2), Trial: run.Trial, Attempt: 2, Seconds: 1, Error: "LOG-1 boom\nstack"}),
			ev(Event{Type: EventTrialFinished, Time: at(3), Trial: run.Trial, Status: "failed", Error: "LOG-2 boom", Progress: Progress{Total: 3, Done: 1, Failed: 1}})},
			[]string{"retry     a1 lora r=4 mlp lr=1e-3 seed=0 (attempt 2 in 1s): LOG-1 boom",
				"failed    a1 lora r=4 mlp lr=1e-3 seed=0: LOG-2 boom"}},
		{"a partial line held until Close", 0, []step{ev(start), ev(run), log("LOG-1 no newline"), func(b *Bar) { b.Close() }},
			[]string{"LOG-1 no newline"}},
		{"lines while a prompt holds the line", 0, []step{ev(start), ev(run), func(b *Bar) { b.Pause() }, log("LOG-1 cancel?\n"), ev(run),
			func(b *Bar) { b.Resume() }, ev(run)},
			[]string{"LOG-1 cancel?"}},
		{"a narrow terminal", 30, []step{ev(start), ev(run), log("LOG-1 x\n"), ev(run)},
			[]string{"LOG-1 x"}},
		{"the sweep's end", 0, []step{ev(start), ev(run), log("LOG-1 x\n"),
			ev(Event{Type: EventSweepFinished, Time: at(9), Sweep: "s", Progress: Progress{Total: 3, Done: 3, OK: 3}}), log("LOG-2 after\n")},
			[]string{"LOG-1 x", "sweep s: 3 ok, 0 failed, 0 diverged, 0 timeout in 9s", "LOG-2 after"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTerm(t)
			b := NewBar(m)
			b.Width = c.width
			b.Now = func() time.Time { return at(5) }
			for _, s := range c.steps {
				s(b)
			}
			rows := m.screen()
			var logs []string
			for i, r := range rows {
				isBar := barRow.MatchString(r)
				if isBar && i != len(rows)-1 {
					t.Errorf("row %d holds bar text above the last row: %q", i, r)
				}
				if isBar && (strings.Contains(r, "LOG") || strings.Contains(r, "sweep s:")) {
					t.Errorf("row %d holds bar text and a log line: %q", i, r)
				}
				if isBar && utf8.RuneCountInString(r) >= max(c.width, 1) && c.width > 0 {
					t.Errorf("row %d: bar of %d columns on a terminal of %d: %q", i, utf8.RuneCountInString(r), c.width, r)
				}
				if !isBar && r != "" {
					logs = append(logs, r)
				}
			}
			if strings.Join(logs, "\n") != strings.Join(c.logs, "\n") {
				t.Errorf("log rows:\n%s\nwant:\n%s\nscreen:\n%s", strings.Join(logs, "\n"), strings.Join(c.logs, "\n"), strings.Join(rows, "\n"))
			}
		})
	}
}

// TestBarLine: the bar's text shows counts, elapsed time, the ETA (counted
// down from its event's), the trials waiting for a base model by task and
// the running trials by label (lr tells them apart) with their step.
func TestBarLine(t *testing.T) {
	start := Event{Type: EventSweepStarted, Time: at(0), Sweep: "s", Progress: Progress{Total: 4}}
	a := tref("a", "lora r=4 mlp lr=1e-3 seed=0", 100)
	b := tref("b", "lora r=4 mlp lr=3e-3 seed=0", 100)
	for _, c := range []struct {
		name   string
		events []Event
		now    int // the tick's clock, seconds after the start
		want   string
	}{
		{"started", []Event{start}, 0,
			"[--------------------] 0/4  ok 0  failed 0  diverged 0  0s  ETA unknown"},
		{"waiting for the base model", []Event{start,
			{Type: EventTrialStarted, Time: at(1), Trial: a, Progress: Progress{Total: 4, Running: 1}},
			{Type: EventTrialPhase, Time: at(1), Trial: a, Phase: "base", Progress: Progress{Total: 4, Running: 1}},
			{Type: EventTrialStarted, Time: at(2), Trial: b, Progress: Progress{Total: 4, Running: 2}},
			{Type: EventTrialPhase, Time: at(2), Trial: b, Phase: "base", Progress: Progress{Total: 4, Running: 2}}}, 65,
			"[--------------------] 0/4  ok 0  failed 0  diverged 0  1m5s  ETA unknown | base model: mlp (2 trials wait)"},
		{"training, labels apart by lr", []Event{start,
			{Type: EventTrialStarted, Time: at(1), Trial: a, Progress: Progress{Total: 4, Running: 1}},
			{Type: EventTrialStarted, Time: at(1), Trial: b, Progress: Progress{Total: 4, Running: 2}},
			{Type: EventTrialPhase, Time: at(1), Trial: b, Phase: "base", Progress: Progress{Total: 4, Running: 2}},
			{Type: EventTrialPhase, Time: at(3), Trial: b, Phase: "train", Progress: Progress{Total: 4, Running: 2}},
			{Type: EventTrialStep, Time: at(4), Trial: a, Metric: &Metric{Step: 40, Split: "train", Metric: "loss"}},
			{Type: EventTrialStep, Time: at(4), Trial: b, Metric: &Metric{Step: 10, Split: "train", Metric: "loss"}}}, 5,
			"[--------------------] 0/4  ok 0  failed 0  diverged 0  5s  ETA unknown | running 2: lora r=4 mlp lr=1e-3 seed=0 40/100; lora r=4 mlp lr=3e-3 seed=0 10/100"},
		{"ETA counts down", []Event{start,
			{Type: EventTrialStarted, Time: at(1), Trial: a, Progress: Progress{Total: 4, Running: 1}},
			{Type: EventTrialFinished, Time: at(11), Trial: a, Status: "ok", ETA: secs(30), Progress: Progress{Total: 4, Done: 1, OK: 1}}}, 21,
			"[#####---------------] 1/4  ok 1  failed 0  diverged 0  21s  ETA 20s"},
		{"ETA floored at 0", []Event{start,
			{Type: EventTrialFinished, Time: at(11), Trial: a, Status: "ok", ETA: secs(5), Progress: Progress{Total: 4, Done: 1, OK: 1}}}, 30,
			"[#####---------------] 1/4  ok 1  failed 0  diverged 0  30s  ETA 0s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTerm(t)
			bar := NewBar(m)
			bar.Width = 400
			for _, e := range c.events {
				bar.Event(e)
			}
			bar.mu.Lock()
			bar.draw(at(c.now))
			bar.mu.Unlock()
			rows := m.screen()
			if got := rows[len(rows)-1]; got != c.want {
				t.Errorf("bar\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
