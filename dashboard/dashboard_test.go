package dashboard

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"peftbench/results"
)

// fixtureTrial is one trial of a synthetic sweep folder.
type fixtureTrial struct {
	id       string
	method   string
	rank     int64
	seed     int64
	lr       float64
	done     bool    // a complete shard
	status   string  // its status when done
	target   float64 // target_metric when done
	steps    int     // step rows (train loss) in the shard
	liveStep int     // steps in a live log when not done (0: none)
}

// trialConfig is the canonical config JSON of a fixture trial, as the
// manifest and the shard hold it.
func trialConfig(sweep string, i int, t fixtureTrial) string {
	return fmt.Sprintf(`{"sweep":%q,"trial_id":%q,"index":%d,"method":%q,"rank":%d,"task":"teacher-shift","seed":%d,"method_options":{"alpha":16},"task_options":{},"train":{"lr":%v,"steps":100}}`,
		sweep, t.id, i, t.method, t.rank, t.seed, t.lr)
}

// writeFixture writes a sweep folder: a manifest planning trials, a
// shard per done trial, a live log per started one.
func writeFixture(t testing.TB, dir, sweep string, trials []fixtureTrial) {
	t.Helper()
	var raws []string
	for i, tr := range trials {
		raws = append(raws, trialConfig(sweep, i, tr))
	}
	m := &results.Manifest{Sweep: sweep, SweepFile: "x.toml", Trials: json.RawMessage("[" + strings.Join(raws, ",") + "]"),
		Started: time.Unix(1700000000, 0).UTC()}
	if err := results.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	for i, tr := range trials {
		switch {
		case tr.done:
			row := results.TrialRow{Sweep: sweep, TrialID: tr.id, Method: tr.method, Rank: tr.rank, Task: "teacher-shift",
				Seed: tr.seed, Index: int64(i), Config: raws[i], Attempts: 1,
				StartedAt: fixtureEnded.Add(-time.Minute), EndedAt: fixtureEnded}
			row.ClearMetrics()
			row.Status = tr.status
			if tr.status != results.StatusOK {
				row.Error = "loss exploded at step 3"
			}
			row.TargetMetric, row.TargetLoss, row.Steps = tr.target, 1-tr.target, int64(tr.steps)
			row.Intruders = []results.IntruderCount{{Epsilon: 0.5, Count: 3}}
			sh := &results.Shard{Trial: row}
			for s := 1; s <= tr.steps; s++ {
				v := 1 / float64(s)
				if s == 2 && tr.status != results.StatusOK {
					v = math.Inf(1)
				}
				sh.Steps = append(sh.Steps, results.StepRow{TrialID: tr.id, Step: int64(s), Split: "train", Metric: "loss", Value: v})
			}
			sh.Spectra = []results.SpectrumRow{{TrialID: tr.id, Layer: "l0.q", Index: 0, SigmaBase: 2, SigmaTuned: 2.5, MaxCos: 0.3, Intruder: []bool{true}}}
			if err := results.WriteShard(dir, sh); err != nil {
				t.Fatal(err)
			}
		case tr.liveStep > 0:
			l, err := results.CreateLive(dir, tr.id, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for s := 1; s <= tr.liveStep; s++ {
				if err := l.Append(int64(s), "train", "loss", 2/float64(s)); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
		}
	}
}

// fixtureEnded is when the fixture's finished trials ended.
var fixtureEnded = time.Unix(1700000100, 0).UTC()

// standardTrials: two lora configurations of two seeds each (one seed of
// the second failed), a full trial running, one pending.
var standardTrials = []fixtureTrial{
	{id: "t0", method: "lora", rank: 8, seed: 1, lr: 1e-3, done: true, status: "ok", target: 0.9, steps: 5},
	{id: "t1", method: "lora", rank: 8, seed: 2, lr: 1e-3, done: true, status: "ok", target: 0.8, steps: 5},
	{id: "t2", method: "lora", rank: 8, seed: 1, lr: 1e-2, done: true, status: "ok", target: 0.7, steps: 5},
	{id: "t3", method: "lora", rank: 8, seed: 2, lr: 1e-2, done: true, status: "diverged", target: math.NaN(), steps: 3},
	{id: "t4", method: "full", rank: 0, seed: 1, lr: 1e-4, liveStep: 4},
	{id: "t5", method: "full", rank: 0, seed: 2, lr: 1e-4},
}

func getJSON(t *testing.T, srv http.Handler, url string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if v != nil && rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, rec.Body)
		}
	}
	return rec.Code
}

type runsAnswer struct {
	Columns []Column `json:"columns"`
	Rows    []struct {
		Row
		Live *liveRef `json:"live"`
	} `json:"rows"`
}

// TestRuns checks the run table: columns with kinds, labels and
// directions from the registry; a running trial with its config and no
// metrics while the folder's lock is held by a live process, killed once
// the lock's holder is dead; seeds of one configuration share a group.
// Planted bugs it catches: a live log read as running whatever the lock
// (the killed assertion), metrics of a trial without results reported as
// zeros, the group key including the seed.
func TestRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "quick")
	writeFixture(t, dir, "quick", standardTrials)
	lock, err := results.LockSweep(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var a runsAnswer
	if code := getJSON(t, srv, "/api/runs?s=0", &a); code != 200 {
		t.Fatalf("status %d", code)
	}
	cols := map[string]Column{}
	for _, c := range a.Columns {
		cols[c.Key] = c
	}
	for key, want := range map[string]Column{
		"lr":            {Key: "lr", Kind: "param", Type: "number", Label: "lr"},
		"method":        {Key: "method", Kind: "param", Type: "string", Label: "method"},
		"target_metric": {Key: "target_metric", Kind: "metric", Type: "number", Label: "target accuracy", Direction: "max"},
		"target_loss":   {Key: "target_loss", Kind: "metric", Type: "number", Label: "target loss (nats)", Direction: "min"},
		"intruders_0.5": {Key: "intruders_0.5", Kind: "metric", Type: "number", Label: "intruder dimensions (ε = 0.5)", Direction: "min"},
		"status":        {Key: "status", Kind: "meta", Type: "string", Label: "status"},
	} {
		if got := cols[key]; got != want {
			t.Errorf("column %s = %+v, want %+v", key, got, want)
		}
	}
	if _, ok := cols["config"]; ok {
		t.Error("the config JSON is a column")
	}
	byID := map[string]int{}
	for i, r := range a.Rows {
		byID[r.ID] = i
	}
	if len(a.Rows) != len(standardTrials) {
		t.Fatalf("%d rows, want %d", len(a.Rows), len(standardTrials))
	}
	row := func(id string) Row { return a.Rows[byID[id]].Row }
	live := a.Rows[byID["t4"]]
	if live.Status != "running" || live.Live == nil || live.Live.Step != 4 || live.Live.Attempt != 1 {
		t.Errorf("t4: status %q live %+v, want running at step 4 of attempt 1", live.Status, live.Live)
	}
	if live.Values["lr"] != 1e-4 || live.Values["method"] != "full" {
		t.Errorf("t4 values %v: want its config", live.Values)
	}
	for _, m := range []string{"target_metric", "steps", "trainable_params", "wall_seconds"} {
		if v, ok := live.Values[m]; ok {
			t.Errorf("running t4 has metric %s = %v", m, v)
		}
	}
	if s := row("t5").Status; s != "pending" {
		t.Errorf("t5 status %q, want pending", s)
	}
	if r := row("t3"); r.Status != "diverged" || r.Error == "" {
		t.Errorf("t3: %q %q, want diverged with its reason", r.Status, r.Error)
	}
	if row("t0").Values["target_metric"] != 0.9 {
		t.Errorf("t0 target_metric %v", row("t0").Values["target_metric"])
	}
	if row("t0").Group != row("t1").Group || row("t0").Group == row("t2").Group || row("t4").Group != row("t5").Group {
		t.Errorf("groups t0..t5: %s %s %s %s %s", row("t0").Group, row("t1").Group, row("t2").Group, row("t4").Group, row("t5").Group)
	}
	var sw []sweepJSON
	getJSON(t, srv, "/api/sweeps", &sw)
	if len(sw) != 1 || sw[0].Name != "quick" || sw[0].Total != 6 || sw[0].Running != 1 || sw[0].Counts["ok"] != 3 {
		t.Errorf("sweeps %+v", sw)
	}

	// The run dies without removing its lock (kill -9): a lock naming a
	// dead process.
	var before map[string]string
	getJSON(t, srv, "/api/version", &before)
	lock.Unlock()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	host, _ := os.Hostname()
	os.WriteFile(filepath.Join(dir, results.LockFile), fmt.Appendf(nil, `{"pid":%d,"host":%q}`, dead.Process.Pid, host), 0o644)
	var after map[string]string
	getJSON(t, srv, "/api/version", &after)
	if before["version"] == after["version"] {
		t.Error("version unchanged when the writer died")
	}
	getJSON(t, srv, "/api/runs?s=0", &a)
	if s := a.Rows[byID["t4"]].Status; s != "killed" {
		t.Errorf("t4 status %q after its run died, want killed", s)
	}
}

// TestSteps checks /api/steps: a shard's steps with infinities as text,
// a live log's steps, a live log beside a complete shard ignored (the
// shard wins); unknown trials 404. Planted bug: the live log read before
// the shard (source "live" for t0).
func TestSteps(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "s", standardTrials)
	// A stale live log beside t3's complete shard, begun before its trial
	// ended (a kill between the shard's write and the log's removal).
	l, err := results.CreateLive(dir, "t3", 1, fixtureEnded.Add(-30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Append(1, "train", "loss", 99)
	l.Close()
	// t2 rerun (an ASHA promotion, a forced rerun): a log begun after its
	// shard's trial ended wins until the new shard lands.
	if l, err = results.CreateLive(dir, "t2", 2, fixtureEnded.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	l.Append(1, "train", "loss", 7)
	l.Close()
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	type stepsAnswer struct {
		ID      string `json:"id"`
		Attempt int    `json:"attempt"`
		Source  string `json:"source"`
		Steps   []struct {
			Step          int64
			Split, Metric string
			Value         any
		} `json:"steps"`
	}
	var a stepsAnswer
	if code := getJSON(t, srv, "/api/steps?s=0&id=t3", &a); code != 200 {
		t.Fatal(code)
	}
	if a.Source != "shard" || len(a.Steps) != 3 || a.Steps[1].Value != "+Inf" || a.Steps[0].Value != 1.0 {
		t.Errorf("t3: %+v", a)
	}
	a = stepsAnswer{}
	getJSON(t, srv, "/api/steps?s=0&id=t2", &a)
	if a.Source != "live" || len(a.Steps) != 1 || a.Attempt != 2 || a.Steps[0].Value != 7.0 {
		t.Errorf("t2 rerunning: %+v, want its live log's one step", a)
	}
	var runs runsAnswer
	getJSON(t, srv, "/api/runs?s=0", &runs)
	for _, r := range runs.Rows {
		switch r.ID {
		case "t2":
			if r.Status == "ok" || r.Live == nil || r.Live.Attempt != 2 || r.Values["target_metric"] != nil {
				t.Errorf("t2 rerunning: status %q live %+v target_metric %v, want it shown from its live log", r.Status, r.Live, r.Values["target_metric"])
			}
		case "t3":
			if r.Status != "diverged" || r.Live != nil {
				t.Errorf("t3 beside a stale log: status %q live %+v, want its shard's", r.Status, r.Live)
			}
		}
	}
	a = stepsAnswer{}
	getJSON(t, srv, "/api/steps?s=0&id=t4", &a)
	if a.Source != "live" || len(a.Steps) != 4 || a.Attempt != 1 || a.Steps[3].Value != 0.5 {
		t.Errorf("t4: %+v", a)
	}
	for _, u := range []string{"/api/steps?s=0&id=nope", "/api/steps?s=0&id=t5"} {
		if code := getJSON(t, srv, u, nil); code != 404 {
			t.Errorf("%s: %d, want 404", u, code)
		}
	}
	for _, u := range []string{"/api/steps?s=1&id=t0", "/api/steps?s=x&id=t0", "/api/steps?s=0&id=a/b", "/api/steps?s=0"} {
		if code := getJSON(t, srv, u, nil); code != 400 {
			t.Errorf("%s: %d, want 400", u, code)
		}
	}
	var sp struct {
		Layers []layerJSON `json:"layers"`
		Eps    []float64   `json:"epsilons"`
	}
	getJSON(t, srv, "/api/spectra?s=0&id=t0", &sp)
	if len(sp.Layers) != 1 || sp.Layers[0].Layer != "l0.q" || len(sp.Eps) != 1 || sp.Eps[0] != 0.5 || !sp.Layers[0].Intruder[0][0] {
		t.Errorf("spectra %+v", sp)
	}
}

// rawGet sends request target path as is (no client-side cleaning or
// encoding) and returns the status code.
func rawGet(t *testing.T, addr, path string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTraversal sends path traversals in every spelling as raw request
// lines: each is 404, while the real files answer 200. Planted bug it
// catches: assets through http.FileServer with the raw-path check dropped
// (its redirects and listings are not 404). Each traversal is refused
// twice over (the raw and decoded path check, then exact routes and the
// asset-name grammar), so dropping one layer alone is not caught.
func TestTraversal(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "s", standardTrials[:1])
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret"), 0o644)
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	for _, p := range []string{"/", "/assets/app.js", "/assets/style.css", "/assets/views.js", "/api/version", "/api/runs?s=0"} {
		if code := rawGet(t, addr, p); code != 200 {
			t.Errorf("GET %s: %d, want 200", p, code)
		}
	}
	for _, p := range []string{
		"/../secret.txt", "/assets/../dashboard.go", "/assets/../../go.mod", "/assets/..%2fdashboard.go",
		"/assets/%2e%2e/dashboard.go", "/assets/%2E%2E%2Fdashboard.go", "/assets/%252e%252e%252fdashboard.go",
		"/assets/..%5cdashboard.go", `/assets/..\dashboard.go`, "/assets/.%2e/go.mod", "/%2e%2e/etc/passwd",
		"/assets//etc/passwd", "/assets/%2fetc%2fpasswd", "/api/../assets/app.js", "/assets/app.js%00.html",
		"/assets/", "/assets/.hidden", "/assets/../../../../etc/passwd", "/secret.txt", "/assets/nope.js",
		"/api/nope", "/api/runs/../version", "/./assets/app.js", "/assets/./app.js",
	} {
		if code := rawGet(t, addr, p); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
}

// TestEscaping: a sweep name, tag and note holding markup reach the page
// only as JSON string content (escaped by encoding/json), and the page's
// assets hold no data. Planted bug: an API answer built with fmt and %s
// (the raw "<script>" in the served bytes).
func TestEscaping(t *testing.T) {
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	dir := t.TempDir()
	writeFixture(t, dir, evil, standardTrials[:1])
	if _, err := results.UpdateAnnotation(dir, "t0", func(a *results.Annotation) { a.Tags = []string{evil}; a.Note = evil }); err != nil {
		t.Fatal(err)
	}
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"/api/sweeps", "/api/runs?s=0", "/"} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		body := rec.Body.String()
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s serves the markup raw:\n%.300s", u, body)
		}
		if u != "/" && !strings.Contains(body, `\u003cscript\u003e`) {
			t.Errorf("%s lacks the escaped name:\n%.300s", u, body)
		}
	}
	var a runsAnswer
	getJSON(t, srv, "/api/runs?s=0", &a)
	if a.Rows[0].Tags[0] != evil || a.Rows[0].Note != evil || a.Rows[0].Values["sweep"] != evil {
		t.Errorf("round trip: %+v", a.Rows[0].Row)
	}
}

// TestAnnotate: a same-origin JSON POST updates annotations.json; a form
// POST, a foreign Origin, a bad tag, an unknown trial are refused and
// leave it alone. Planted bugs: no Content-Type check (the form row), no
// Origin check (the evil.example row).
func TestAnnotate(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "s", standardTrials)
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body, ctype, origin string) (int, string) {
		req := httptest.NewRequest("POST", "http://127.0.0.1:8080/api/annotate", strings.NewReader(body))
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Content-Type", ctype)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		body, ctype, origin string
		code                int
	}{
		{`{"s":0,"id":"t1","tags":["x"]}`, "application/x-www-form-urlencoded", "", 415},
		{`{"s":0,"id":"t1","tags":["x"]}`, "text/plain", "", 415},
		{`{"s":0,"id":"t1","tags":["x"]}`, "application/json", "http://evil.example", 403},
		{`{"s":0,"id":"t1","tags":["a,b"]}`, "application/json", "", 400},
		{`{"s":0,"id":"t1","tags":[" a"]}`, "application/json", "", 400},
		{`{"s":0,"id":"zz","tags":["x"]}`, "application/json", "", 404},
		{`{"s":3,"id":"t1","tags":["x"]}`, "application/json", "", 400},
		{`{"s":0,"id":"t1","tags":["x"],"extra":1}`, "application/json", "", 400},
	} {
		if code, body := post(tc.body, tc.ctype, tc.origin); code != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d", tc.body, tc.ctype, tc.origin, code, body, tc.code)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, results.AnnotationsFile)); err == nil {
		t.Fatal("a refused request wrote annotations.json")
	}
	code, body := post(`{"s":0,"id":"t4","tags":["best","b"],"note":"look"}`, "application/json; charset=utf-8", "http://127.0.0.1:8080")
	if code != 200 || body != `{"note":"look","tags":["b","best"]}`+"\n" {
		t.Errorf("annotate: %d %s", code, body)
	}
	code, _ = post(`{"s":0,"id":"t4","note":"changed"}`, "application/json", "")
	ann, err := results.ReadAnnotations(dir)
	if code != 200 || err != nil || ann["t4"].Note != "changed" || len(ann["t4"].Tags) != 2 {
		t.Errorf("annotations.json: %v %v", ann, err)
	}
}
