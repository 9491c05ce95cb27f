package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"peftbench/internal/browsertest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"peftbench/dashboard"
	"peftbench/results"
)

// liveTrainer is a command trainer whose rank-4 trials are slow: it
// reports a train loss every 0.1 s for $SLOW_STEPS steps (value = its pid·1000 +
// step, so rows of two attempts tell apart), rank-2 trials a few steps at
// once; then a summary.
const liveTrainer = `#!/bin/sh
steps=3; pause=0
if grep -q '"rank": 4' "$PEFTBENCH_TRIAL"; then steps=${SLOW_STEPS:-400}; pause=${SLOW_PAUSE:-0.1}; fi
i=1
while [ $i -le $steps ]; do
  echo '{"type":"metric","step":'$i',"split":"train","name":"loss","value":'$(( $$ * 1000 + i ))'}'
  [ "$pause" = 0 ] || sleep $pause
  i=$((i+1))
done
seed=$(grep -o '"seed": [0-9]*' "$PEFTBENCH_TRIAL" | grep -o '[0-9]*$')
echo '{"type":"summary","metrics":{"target_loss":0.'$seed'}}'
`

// startSweep writes the trainer and a sweep of lora ranks 2 and 4 × 2
// seeds, and starts `bench run` on it; it returns the sweep folder and the
// running command (killed at cleanup).
func startSweep(t *testing.T, bench string, env ...string) (string, *exec.Cmd, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trainer.sh"), []byte(liveTrainer), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `name = "live"
seeds = 2
[grid]
method = ["lora"]
rank = [2, 4]
task = ["teacher-shift"]
[resources]
workers = 4
[trainer]
kind = "command"
command = ["./trainer.sh"]
`
	sweep := filepath.Join(dir, "live.toml")
	if err := os.WriteFile(sweep, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	cmd, stderr := runSweep(t, bench, sweep, out, env...)
	return filepath.Join(out, "live"), cmd, stderr
}

// syncBuffer is a child's stderr, read by the test while the child writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func runSweep(t *testing.T, bench, sweep, out string, env ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bench, "run", sweep, "--out", out, "--cache", t.TempDir())
	cmd.Dir = filepath.Dir(sweep)
	cmd.Env = append(os.Environ(), env...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

// waitFor polls cond every 50 ms until it holds or the limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slowTrials returns the rank-4 trials' IDs once both write a live log
// with at least n steps.
func slowTrials(t *testing.T, sweepDir string, n int) []string {
	t.Helper()
	var ids []string
	waitFor(t, 30*time.Second, fmt.Sprintf("two live logs with %d steps", n), func() bool {
		ids = nil
		live, _ := results.LiveTrials(sweepDir)
		for _, id := range live {
			if l, err := results.ReadLive(sweepDir, id); err == nil && len(l.Steps) >= n {
				ids = append(ids, id)
			}
		}
		return len(ids) == 2
	})
	return ids
}

// TestServeLive is acceptance 1 of the dashboard: `bench serve` on the
// folder of a `bench run` still running in another process, driven in
// headless Chromium: the table fills; a filter keeps the rank-2 runs;
// group-by rank shows one row per configuration with n = 2 seeds; a
// running trial's curve gains points without a reload; a tag typed in the
// page is in annotations.json. Screenshots go to the test's temp dir (and
// $PEFTBENCH_SCREENSHOTS). Planted bugs it catches: the runner not writing
// live logs or the dashboard not reading them (no running row, no curve),
// the page not polling (the point count stays), the annotate POST refused
// for the page's own origin (no tag in the file).
func TestServeLive(t *testing.T) {
	bench := benchBinary(t)
	browser := browsertest.Chromium(t, "bench serve: TestServeLive")
	sweepDir, run, runErr := startSweep(t, bench)
	slow := slowTrials(t, sweepDir, 5) // the fast trials write 3

	srv := exec.Command(bench, "serve", sweepDir, "--addr", "127.0.0.1:0")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvErr syncBuffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- srv.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bench serve after SIGINT: %v\n%s", err, srvErr.String())
			}
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			t.Error("bench serve did not stop within 10s of SIGINT")
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("bench serve printed no URL: %v\n%s", err, srvErr.String())
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "bench serve: "))
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("bench serve printed %q", line)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelC := chromedp.NewContext(actx)
	defer cancelC()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	shots := t.TempDir()
	shot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		os.WriteFile(filepath.Join(shots, name), png, 0o644)
		if d := os.Getenv("PEFTBENCH_SCREENSHOTS"); d != "" {
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, name), png, 0o644)
		}
		t.Logf("screenshot %s", filepath.Join(shots, name))
	}
	js := func(expr string) string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	wait := func(what, expr string) {
		t.Helper()
		waitFor(t, 20*time.Second, what+"\n"+runErr.String(), func() bool { return js(`String(!!(`+expr+`))`) == "true" })
	}
	do := func(expr string) { js(`(() => { ` + expr + `; return "" })()`) }

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	wait("table fills", `document.querySelectorAll("#runs tbody tr").length === 4`)
	for _, id := range slow {
		if st := js(`document.querySelector('tr[data-run="0:` + id + `"] .status').textContent`); !strings.HasPrefix(st, "running") {
			t.Errorf("slow trial %s: status %q, want running", id, st)
		}
	}
	shot("serve-table.png")

	do(`const f = document.getElementById("filter"); f.value = "rank == 2"; f.dispatchEvent(new Event("input"))`)
	wait("filter rank == 2", `[...document.querySelectorAll("#runs tbody tr[data-run]")].length === 2 &&
		[...document.querySelectorAll('#runs tbody [data-col="rank"]')].every(td => td.textContent === "2")`)
	do(`const f = document.getElementById("filter"); f.value = ""; f.dispatchEvent(new Event("input"))`)
	wait("filter cleared", `document.querySelectorAll("#runs tbody tr").length === 4`)

	do(`const s = document.getElementById("groupby"); for (const o of s.options) o.selected = o.value === "rank"; s.dispatchEvent(new Event("change"))`)
	wait("group by rank", `document.querySelectorAll("#runs tbody tr[data-group]").length === 2`)
	if g := js(`[...document.querySelectorAll("#runs tbody tr[data-group]")].map(r => r.querySelector('[data-col="rank"]').textContent + ":" + r.querySelector('[data-col="n"]').textContent).sort().join(" ")`); g != "2:2 4:2" {
		t.Errorf("groups by rank %q, want 2:2 4:2", g)
	}
	shot("serve-groups.png")
	do(`const s = document.getElementById("groupby"); for (const o of s.options) o.selected = false; s.dispatchEvent(new Event("change"))`)
	wait("ungrouped", `document.querySelectorAll("#runs tbody tr[data-run]").length === 4`)

	key := "0:" + slow[0]
	do(`document.querySelector('tr[data-run="` + key + `"] input.sel').click()`)
	path := `document.querySelector('path.curve[data-key="` + key + `"]')`
	wait("running curve", path+` && Number(`+path+`.dataset.points) > 0`)
	n0 := js(path + `.dataset.points`)
	wait("running curve grows", `Number(`+path+`.dataset.points) >= `+n0+` + 5`)
	shot("serve-curve.png")
	// The y ticks of a loss near 2.56e7 that moves by tens stay distinct
	// (4 significant digits labelled two of them alike).
	ticks := js(`[...document.querySelectorAll('#curves svg text[text-anchor="end"]')].map(t => t.textContent).filter(s => s !== "step").join(" ")`)
	if f := strings.Fields(ticks); len(f) != 5 || len(slices.Compact(slices.Clone(f))) != 5 {
		t.Errorf("y tick labels %q: want 5 distinct", ticks)
	}

	fast := js(`[...document.querySelectorAll("#runs tbody tr[data-run]")].find(r => r.querySelector(".status").textContent === "ok").dataset.run`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`tr[data-run="`+fast+`"] input.addtag`), "keep\r")); err != nil {
		t.Fatal(err)
	}
	fastID := strings.TrimPrefix(fast, "0:")
	waitFor(t, 10*time.Second, "tag in annotations.json", func() bool {
		ann, err := results.ReadAnnotations(sweepDir)
		return err == nil && slices.Contains(ann[fastID].Tags, "keep")
	})
	if run.ProcessState != nil {
		t.Errorf("the sweep ended before the checks: the slow trials were not running throughout")
	}
}

type runRow struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Live   *struct{ Attempt, Step int }
}

type apiSteps struct {
	Attempt int    `json:"attempt"`
	Source  string `json:"source"`
	Steps   []struct {
		Step          int64
		Split, Metric string
		Value         float64
	} `json:"steps"`
}

func getAPI(t *testing.T, h http.Handler, url string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if rec.Code != 200 {
		t.Fatalf("%s: %d %s", url, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// oneAttempt checks a trial's steps as the dashboard shows them: no
// duplicated (step, split, metric), and every row from one trainer
// process (value div 1000 is its pid); it returns that pid.
func oneAttempt(t *testing.T, id string, a *apiSteps) int64 {
	t.Helper()
	seen := map[string]bool{}
	var pid int64 = -1
	for _, s := range a.Steps {
		k := fmt.Sprint(s.Step, s.Split, s.Metric)
		if seen[k] {
			t.Fatalf("trial %s (%s): step %d %s/%s twice", id, a.Source, s.Step, s.Split, s.Metric)
		}
		seen[k] = true
		p := int64(math.Floor(s.Value / 1000))
		if pid >= 0 && p != pid {
			t.Fatalf("trial %s (%s): rows of trainer processes %d and %d mixed", id, a.Source, pid, p)
		}
		pid = p
	}
	return pid
}

// TestServeKillResume is acceptance 5: kill -9 of a running `bench run`,
// then `bench run` again to completion. While the sweep is dead the
// killed trials are "killed" with the partial steps of their attempt;
// during and after the rerun their steps are never duplicated nor mixed
// from two attempts, and at the end equal steps.parquet's rows. Planted
// bugs it catches: a live log appended to rather than replaced on a new
// attempt, or live steps merged with the shard's (duplicates or two pids),
// the killed status read from the live log alone (running while dead).
func TestServeKillResume(t *testing.T) {
	bench := benchBinary(t)
	sweepDir, run, runErr := startSweep(t, bench, "SLOW_STEPS=30", "SLOW_PAUSE=0.05")
	slow := slowTrials(t, sweepDir, 5)
	run.Process.Kill()
	run.Wait()

	h, err := dashboard.New([]string{sweepDir})
	if err != nil {
		t.Fatal(err)
	}
	var runs struct {
		Rows []runRow `json:"rows"`
	}
	getAPI(t, h, "/api/runs?s=0", &runs)
	killedPID := map[string]int64{}
	for _, id := range slow {
		i := slices.IndexFunc(runs.Rows, func(r runRow) bool { return r.ID == id })
		if i < 0 || runs.Rows[i].Status != "killed" || runs.Rows[i].Live == nil || runs.Rows[i].Live.Step < 5 {
			t.Fatalf("killed trial %s: %+v, want killed with 5 steps or more\n%s", id, runs.Rows, runErr.String())
		}
		var a apiSteps
		getAPI(t, h, "/api/steps?s=0&id="+id, &a)
		if a.Source != "live" || len(a.Steps) < 5 || a.Attempt != runs.Rows[i].Live.Attempt {
			t.Fatalf("killed trial %s: steps %+v", id, a)
		}
		killedPID[id] = oneAttempt(t, id, &a)
	}

	sweep := filepath.Join(filepath.Dir(filepath.Dir(sweepDir)), "live.toml")
	rerun, rerunErr := runSweep(t, bench, sweep, filepath.Dir(sweepDir), "SLOW_STEPS=30", "SLOW_PAUSE=0.05")
	done := make(chan error, 1)
	go func() { done <- rerun.Wait() }()
	var runErrEnd error
	polls := 0
	for finished := false; !finished; {
		select {
		case runErrEnd = <-done:
			finished = true
		case <-time.After(50 * time.Millisecond):
		}
		for _, id := range slow {
			var a apiSteps
			getAPI(t, h, "/api/steps?s=0&id="+id, &a)
			if p := oneAttempt(t, id, &a); len(a.Steps) > 0 && p == killedPID[id] && a.Source != "live" {
				t.Fatalf("trial %s: the rerun's %s shows the killed attempt's rows", id, a.Source)
			}
			polls++
		}
	}
	if runErrEnd != nil {
		t.Fatalf("bench run again: %v\n%s", runErrEnd, rerunErr.String())
	}
	all, err := results.ReadSteps(filepath.Join(sweepDir, results.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range slow {
		var a apiSteps
		getAPI(t, h, "/api/steps?s=0&id="+id, &a)
		pid := oneAttempt(t, id, &a)
		if a.Source != "shard" || pid == killedPID[id] {
			t.Errorf("trial %s after the rerun: source %s, pid %d (killed %d)", id, a.Source, pid, killedPID[id])
		}
		var want []string
		for _, s := range all {
			if s.TrialID == id {
				want = append(want, fmt.Sprint(s.Step, s.Split, s.Metric, s.Value))
			}
		}
		var got []string
		for _, s := range a.Steps {
			got = append(got, fmt.Sprint(s.Step, s.Split, s.Metric, s.Value))
		}
		if !slices.Equal(got, want) || len(got) != 30 {
			t.Errorf("trial %s: /api/steps %d rows, steps.parquet %d: differ", id, len(got), len(want))
		}
	}
	t.Logf("%d polls of /api/steps during the rerun", polls)
}
