package dashboard

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"peftbench/internal/browsertest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"peftbench/analysis"
)

// The views' browser test: testdata/views/views.html renders every view of
// assets/views.js from the fixtures beside it: runs.json, spectra.json and
// sweeps.json (two sweeps, several methods × seeds, a failed, a diverged
// and a running run, full fine-tuning without a rank, a key only one sweep
// has, markup in a sweep name, a tag, a note and a layer name), drives a
// brush, a click and the pickers through DOM events, and writes what it
// saw into body[data-checks]. The expectations below are computed here,
// from the fixtures, not by the page; a few are also written out by hand
// to hold the computation itself.

// viewsChecks is the page's body[data-checks].
type viewsChecks struct {
	Errors    []string `json:"errors"`
	Parcoords struct {
		Selections [][]string                  `json:"selections"`
		Brushes    []map[string]map[string]any `json:"brushes"`
		Lines      int                         `json:"lines"`
		DataLines  int                         `json:"dataLines"`
		Dim        int                         `json:"dim"`
		BrushRects int                         `json:"brushRects"`
	} `json:"parcoords"`
	Pareto struct {
		Selections [][]string `json:"selections"`
		Changes    []struct {
			X, Y  string
			Group bool
		} `json:"changes"`
		X           string   `json:"x"`
		Y           string   `json:"y"`
		XScale      string   `json:"xscale"`
		Count       int      `json:"count"`
		Front       []string `json:"front"`
		ClickedKeys string   `json:"clickedKeys"`
		GroupCount  int      `json:"groupCount"`
		GroupFront  []string `json:"groupFront"`
		PickedX     string   `json:"pickedX"`
		PickedFront []string `json:"pickedFront"`
	} `json:"pareto"`
	Spectra struct {
		Panels []struct {
			Layer     string `json:"layer"`
			Intruders int    `json:"intruders"`
			Markers   int    `json:"markers"`
		} `json:"panels"`
		MarkersEps4 int `json:"markersEps4"`
	} `json:"spectra"`
	Compare struct {
		Pairs []struct {
			Key, A, B, Diff string
		} `json:"pairs"`
		OnlyAKeys    []string `json:"onlyAKeys"`
		OnlyBKeys    []string `json:"onlyBKeys"`
		OnlyAConfigs int      `json:"onlyAConfigs"`
		OnlyBConfigs int      `json:"onlyBConfigs"`
		HeaderB      string   `json:"headerB"`
	} `json:"compare"`
	Edge struct {
		Empty  map[string]string `json:"empty"`
		Single struct {
			Lines, Points, Front int
			Compare              string
		} `json:"single"`
		NoDirection struct {
			Points, Front int
			Note          string
		} `json:"noDirection"`
	} `json:"edge"`
	TQ        []float64 `json:"tq"`
	Injection struct {
		Scripts, Imgs int
		Pwned         string
		SweepText     bool
	} `json:"injection"`
}

// The fixtures, as /api/runs, /api/spectra and /api/sweeps give them.
type viewsRuns struct {
	Columns []struct {
		Key, Kind, Type, Label, Direction string
	} `json:"columns"`
	Rows []viewsRow `json:"rows"`
}

type viewsRow struct {
	Sweep  int            `json:"sweep"`
	ID     string         `json:"id"`
	Status string         `json:"status"`
	Group  string         `json:"group"`
	Values map[string]any `json:"values"`
}

func (r viewsRow) key() string { return fmt.Sprintf("%d:%s", r.Sweep, r.ID) }

type viewsSpectra struct {
	Layers []struct {
		Layer    string   `json:"layer"`
		Intruder [][]bool `json:"intruder"`
	} `json:"layers"`
}

// viewsNum reads a fixture value as the views do: a JSON number, or the
// API's "NaN"/"+Inf"/"-Inf" strings; ok is false for anything else.
func viewsNum(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		switch x {
		case "NaN":
			return math.NaN(), true
		case "+Inf":
			return math.Inf(1), true
		case "-Inf":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

// viewsFinite is a row's value of key when it is a finite number.
func viewsFinite(r viewsRow, key string) (float64, bool) {
	v, ok := viewsNum(r.Values[key])
	return v, ok && !math.IsNaN(v) && !math.IsInf(v, 0)
}

func TestViewsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("dashboard: browser test skipped in -short mode")
	}
	bin := browsertest.Chromium(t, "dashboard: views.js")
	var runs viewsRuns
	var spectra viewsSpectra
	var sweeps []struct{ Name string }
	viewsFixture(t, "runs.json", &runs)
	viewsFixture(t, "spectra.json", &spectra)
	viewsFixture(t, "sweeps.json", &sweeps)
	dir := map[string]string{}
	for _, c := range runs.Columns {
		dir[c.Key] = c.Direction
	}
	byDesc := viewsKeysByDesc(runs)

	// fetch() does not read file:// URLs: serve the package folder on loopback.
	srv := httptest.NewServer(http.FileServer(http.Dir(".")))
	defer srv.Close()
	url := srv.URL + "/testdata/views/views.html"

	dom, logs := browsertest.Run(t, bin, "--virtual-time-budget=10000", "--dump-dom", url)
	if errs := browsertest.ConsoleErrors(logs); len(errs) > 0 {
		t.Errorf("console messages (the page logs none):\n%s", strings.Join(errs, "\n"))
	}
	if strings.Contains(dom, "data-pwned") {
		t.Errorf("markup in a fixture string ran as code: body has data-pwned")
	}
	m := regexp.MustCompile(`data-checks="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no data-checks in the dumped DOM (the page did not finish); stderr:\n%s", logs)
	}
	var got viewsChecks
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &got); err != nil {
		t.Fatalf("data-checks: %v\n%s", err, m[1])
	}
	if len(got.Errors) > 0 {
		t.Errorf("the page caught errors:\n%s", strings.Join(got.Errors, "\n"))
	}

	t.Run("parcoords", func(t *testing.T) {
		// One line per run with a value on some axis: full fine-tuning
		// (no rank), the failed and the running run (no metrics) too.
		axes := []string{"method", "rank", "lr", "target_metric", "forgetting"}
		var drawn, lora []string
		for _, r := range runs.Rows {
			if slices.ContainsFunc(axes, func(k string) bool { return r.Values[k] != nil }) {
				drawn = append(drawn, r.key())
				if r.Values["method"] == "lora" {
					lora = append(lora, r.key())
				}
			}
		}
		slices.Sort(lora)
		if len(drawn) != 22 || len(lora) != 12 {
			t.Fatalf("the test's own expectation: %d lines, %d lora runs; want 22 and 12 (fix the fixture or the test)", len(drawn), len(lora))
		}
		pc := got.Parcoords
		if pc.Lines != len(drawn) || pc.DataLines != len(drawn) {
			t.Errorf("%d lines (data-lines %d), want %d", pc.Lines, pc.DataLines, len(drawn))
		}
		// Dragging across "lora" on the method axis selects exactly the lora runs.
		if len(pc.Selections) != 1 || !slices.Equal(pc.Selections[0], lora) {
			t.Errorf("brush on method=lora selected %v, want %v", pc.Selections, lora)
		}
		if pc.Dim != len(drawn)-len(lora) || pc.BrushRects != 1 {
			t.Errorf("after the brush: %d lines dimmed, %d brush drawn; want %d and 1", pc.Dim, pc.BrushRects, len(drawn)-len(lora))
		}
		wantBrush := []map[string]map[string]any{{"method": {"na": false, "values": []any{"lora"}}}}
		if !reflect.DeepEqual(pc.Brushes, wantBrush) {
			t.Errorf("onBrush got %v, want %v", pc.Brushes, wantBrush)
		}
	})

	t.Run("pareto", func(t *testing.T) {
		p := got.Pareto
		front := viewsFront(runs, "trainable_params", "target_metric", dir, false)
		hand := []string{byDesc["0 lora 8 2"], byDesc["0 full <nil> 2"], byDesc["1 lora 4 2"],
			byDesc["1 lora 8 1"], byDesc["1 dora 8 1"], byDesc["1 lora 16 2"]}
		slices.Sort(hand)
		if !slices.Equal(front, hand) {
			t.Fatalf("the test's own front %v differs from the hand-made %v", front, hand)
		}
		if p.X != "trainable_params" || p.Y != "target_metric" || p.XScale != "log" {
			t.Errorf("axes %s (%s) × %s, want trainable_params (log) × target_metric", p.X, p.XScale, p.Y)
		}
		if p.Count != 19 { // 22 runs less the failed, the diverged and the running one
			t.Errorf("%d points, want 19 (the ok runs)", p.Count)
		}
		if !slices.Equal(p.Front, front) {
			t.Errorf("front %v, want %v (trainable params: lower is better; target metric: higher)", p.Front, front)
		}
		if len(p.Selections) != 1 || len(p.Selections[0]) != 1 || p.Selections[0][0] != p.ClickedKeys {
			t.Errorf("clicking %q sent onSelect %v", p.ClickedKeys, p.Selections)
		}
		gfront := viewsFront(runs, "trainable_params", "target_metric", dir, true)
		if p.GroupCount != 9 || !slices.Equal(viewsSortEach(p.GroupFront), gfront) {
			t.Errorf("per configuration: %d points, front %v; want 9 points, front %v", p.GroupCount, p.GroupFront, gfront)
		}
		pfront := viewsFront(runs, "forgetting", "target_metric", dir, true)
		if p.PickedX != "forgetting" || !slices.Equal(viewsSortEach(p.PickedFront), pfront) {
			t.Errorf("after picking x=forgetting: x %s, front %v; want front %v", p.PickedX, p.PickedFront, pfront)
		}
		wantChanges := fmt.Sprint([]any{[]any{"trainable_params", "target_metric", true}, []any{"forgetting", "target_metric", true}})
		var gotChanges []any
		for _, c := range p.Changes {
			gotChanges = append(gotChanges, []any{c.X, c.Y, c.Group})
		}
		if fmt.Sprint(gotChanges) != wantChanges {
			t.Errorf("onChange got %v, want %v", gotChanges, wantChanges)
		}
	})

	t.Run("spectra", func(t *testing.T) {
		sp := got.Spectra
		if len(sp.Panels) != len(spectra.Layers) {
			t.Fatalf("%d panels, want %d layers", len(sp.Panels), len(spectra.Layers))
		}
		total4 := 0
		for i, l := range spectra.Layers {
			n := 0
			for _, f := range l.Intruder {
				if f[2] { // ε = 0.5, the page's opts.eps = 2
					n++
				}
				if f[4] {
					total4++
				}
			}
			g := sp.Panels[i]
			if g.Layer != l.Layer || g.Intruders != n || g.Markers != n {
				t.Errorf("panel %d: layer %q, %d intruders, %d marked; want %q, %d", i, g.Layer, g.Intruders, g.Markers, l.Layer, n)
			}
		}
		if sp.MarkersEps4 != total4 {
			t.Errorf("after picking ε = 0.9: %d marked, want %d", sp.MarkersEps4, total4)
		}
	})

	t.Run("compare", func(t *testing.T) {
		c := got.Compare
		want := viewsPairs(runs, "target_metric", 0, 1)
		if len(want) != 4 {
			t.Fatalf("the test's own expectation has %d pairs, want 4", len(want))
		}
		if len(c.Pairs) != len(want) {
			t.Fatalf("%d pairs, want %d: %v", len(c.Pairs), len(want), c.Pairs)
		}
		for _, gp := range c.Pairs {
			var key []any
			if err := json.Unmarshal([]byte(gp.Key), &key); err != nil {
				t.Fatalf("pair key %q: %v", gp.Key, err)
			}
			w, ok := want[fmt.Sprint(key)]
			if !ok {
				t.Errorf("pair %v is not a configuration of both sweeps", key)
				continue
			}
			viewsCheckSide(t, key, "A", gp.A, w[0])
			viewsCheckSide(t, key, "B", gp.B, w[1])
			d := math.NaN()
			fmt.Sscan(gp.Diff, &d)
			if math.Abs(d-(w[1].mean-w[0].mean)) > 1e-9 {
				t.Errorf("%v: difference %s, want %g", key, gp.Diff, w[1].mean-w[0].mean)
			}
		}
		// By hand: lora r=8 in A is 0.86, 0.88, 0.85 → 0.8633 ± 4.302653·0.015275/√3.
		if w := want[fmt.Sprint([]any{"lora", 8.0, "teacher-shift", 0.001})]; math.Abs(w[0].half-0.037946) > 1e-5 || math.Abs(w[1].mean-w[0].mean-0.006667) > 1e-5 {
			t.Errorf("the test's own lora r=8 pair: %+v", w)
		}
		if len(c.OnlyAKeys) != 0 || !slices.Equal(c.OnlyBKeys, []string{"lora_dropout"}) || c.OnlyAConfigs != 0 || c.OnlyBConfigs != 1 {
			t.Errorf("only in A: keys %v, %d configs; only in B: keys %v, %d configs; want none, 0; [lora_dropout], 1 (lora r=16)",
				c.OnlyAKeys, c.OnlyAConfigs, c.OnlyBKeys, c.OnlyBConfigs)
		}
		if c.HeaderB != "B: "+sweeps[1].Name {
			t.Errorf("header %q, want the sweep's name as text %q", c.HeaderB, "B: "+sweeps[1].Name)
		}
	})

	t.Run("edge cases", func(t *testing.T) {
		for _, v := range []string{"parcoords", "pareto", "spectra", "compare"} {
			if got.Edge.Empty[v] == "" {
				t.Errorf("%s on no data: no message", v)
			}
		}
		s := got.Edge.Single
		if s.Lines != 1 || s.Points != 1 || s.Front != 1 || s.Compare == "" {
			t.Errorf("one run: %d lines, %d points, %d on the front, compare message %q; want 1, 1, 1 and a message", s.Lines, s.Points, s.Front, s.Compare)
		}
		// grad norm has no direction: its two ok runs are drawn, no front.
		nd := got.Edge.NoDirection
		if nd.Points != 2 || nd.Front != 0 || !strings.Contains(nd.Note, "No front") {
			t.Errorf("x without a direction: %d points, %d on a front, note %q; want 2, 0, \"No front…\"", nd.Points, nd.Front, nd.Note)
		}
	})

	t.Run("t quantiles", func(t *testing.T) {
		if len(got.TQ) != 200 {
			t.Fatalf("%d quantiles, want 200", len(got.TQ))
		}
		for i, q := range got.TQ {
			df := float64(i + 1)
			want := analysis.TQuantile(0.975, df)
			tol := 1e-6 // the table's entries
			if df > 30 {
				tol = 2e-4 // interpolated in 1/df
			}
			if math.Abs(q-want) > tol {
				t.Errorf("t975(%g) = %.6f, want %.6f", df, q, want)
			}
		}
	})

	t.Run("escaping", func(t *testing.T) {
		in := got.Injection
		if in.Scripts != 2 || in.Imgs != 0 || in.Pwned != "" || !in.SweepText {
			t.Errorf("%d scripts (the page has 2), %d images (want 0), pwned %q, sweep name shown as text %v", in.Scripts, in.Imgs, in.Pwned, in.SweepText)
		}
	})

	// A screenshot of each view, for people to look at.
	shots := t.TempDir()
	for _, v := range []string{"parcoords", "pareto", "spectra", "compare"} {
		shot := filepath.Join(shots, "views-"+v+".png")
		_, logs := browsertest.Run(t, bin, "--virtual-time-budget=10000", "--screenshot="+shot, "--window-size=1100,800", url+"?only="+v)
		info, err := os.Stat(shot)
		if err != nil || info.Size() < 5_000 {
			t.Errorf("no screenshot of %s (%v); stderr:\n%s", v, err, logs)
			continue
		}
		if out := os.Getenv("PEFTBENCH_SCREENSHOTS"); out != "" {
			b, _ := os.ReadFile(shot)
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Error(err)
			} else if err := os.WriteFile(filepath.Join(out, filepath.Base(shot)), b, 0o644); err != nil {
				t.Error(err)
			}
		}
		t.Logf("screenshot: %s (%d bytes)", shot, info.Size())
	}
}

// viewsFront is the Pareto front of the ok runs with finite x and y (or
// of the configurations' means, by sweep and group), as sorted keys (a
// configuration's keys sorted and joined by spaces).
func viewsFront(runs viewsRuns, x, y string, dir map[string]string, group bool) []string {
	type pt struct {
		x, y float64
		keys []string
	}
	var pts []pt
	idx := map[string]int{}
	for _, r := range runs.Rows {
		vx, okx := viewsFinite(r, x)
		vy, oky := viewsFinite(r, y)
		if r.Status != "ok" || !okx || !oky {
			continue
		}
		k := r.key()
		if group {
			k = fmt.Sprint(r.Sweep, "/", r.Group)
		}
		i, seen := idx[k]
		if !seen {
			i = len(pts)
			idx[k] = i
			pts = append(pts, pt{})
		}
		pts[i].x += vx
		pts[i].y += vy
		pts[i].keys = append(pts[i].keys, r.key())
	}
	for i := range pts {
		n := float64(len(pts[i].keys))
		pts[i].x /= n
		pts[i].y /= n
	}
	better := func(a, b float64, d string) bool { return d == "max" && a >= b || d == "min" && a <= b }
	var out []string
	for i, p := range pts {
		dominated := false
		for j, q := range pts {
			if i != j && better(q.x, p.x, dir[x]) && better(q.y, p.y, dir[y]) && (q.x != p.x || q.y != p.y) {
				dominated = true
				break
			}
		}
		if !dominated {
			slices.Sort(p.keys)
			out = append(out, strings.Join(p.keys, " "))
		}
	}
	slices.Sort(out)
	return out
}

// viewsSortEach sorts the keys within each space-separated entry, then the entries.
func viewsSortEach(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		f := strings.Fields(s)
		slices.Sort(f)
		out[i] = strings.Join(f, " ")
	}
	slices.Sort(out)
	return out
}

type viewsSide struct {
	mean, half float64 // half NaN when n = 1
	n          int
}

// viewsPairs is the comparison of sweeps a and b, computed apart from the
// page: configurations keyed by the param columns both sweeps have (the
// seed aside), each side's mean and 95% t-interval (analysis.TInterval)
// over its ok runs. Keyed by fmt.Sprint of the key's values.
func viewsPairs(runs viewsRuns, metric string, a, b int) map[string][2]viewsSide {
	has := func(sweep int, k string) bool {
		return slices.ContainsFunc(runs.Rows, func(r viewsRow) bool { return r.Sweep == sweep && r.Values[k] != nil })
	}
	var common []string
	for _, c := range runs.Columns {
		if c.Kind == "param" && c.Key != "seed" && has(a, c.Key) && has(b, c.Key) {
			common = append(common, c.Key)
		}
	}
	vals := map[string][2][]float64{}
	for _, r := range runs.Rows {
		if r.Sweep != a && r.Sweep != b {
			continue
		}
		var key []any
		for _, k := range common {
			key = append(key, r.Values[k])
		}
		k := fmt.Sprint(key)
		side := vals[k]
		if v, ok := viewsFinite(r, metric); ok && r.Status == "ok" {
			if r.Sweep == a {
				side[0] = append(side[0], v)
			} else {
				side[1] = append(side[1], v)
			}
		}
		vals[k] = side
	}
	out := map[string][2]viewsSide{}
	for k, sides := range vals {
		if len(sides[0]) == 0 || len(sides[1]) == 0 {
			continue // only one sweep has it (lora r=16 is only in b)
		}
		var w [2]viewsSide
		for i, xs := range sides {
			sum := 0.0
			for _, x := range xs {
				sum += x
			}
			w[i] = viewsSide{mean: sum / float64(len(xs)), half: math.NaN(), n: len(xs)}
			if len(xs) > 1 {
				lo, hi := analysis.TInterval(xs, 0.95)
				w[i].half = (hi - lo) / 2
			}
		}
		out[k] = w
	}
	return out
}

// viewsCheckSide compares a pair's side "mean half n" with the expectation.
func viewsCheckSide(t *testing.T, key []any, name, got string, w viewsSide) {
	t.Helper()
	f := strings.Split(got, " ")
	if len(f) != 3 {
		t.Errorf("%v %s: %q is not \"mean half n\"", key, name, got)
		return
	}
	var mean, half float64
	var n int
	fmt.Sscan(f[0], &mean)
	fmt.Sscan(f[2], &n)
	if f[1] == "" {
		half = math.NaN()
	} else {
		fmt.Sscan(f[1], &half)
	}
	sameHalf := math.IsNaN(half) && math.IsNaN(w.half) || math.Abs(half-w.half) <= 1e-6*w.half
	if n != w.n || math.Abs(mean-w.mean) > 1e-12 || !sameHalf {
		t.Errorf("%v %s: mean %g ± %g (n=%d), want %g ± %g (n=%d)", key, name, mean, half, n, w.mean, w.half, w.n)
	}
}

// viewsKeysByDesc maps "sweep method rank seed" to a fixture run's key.
func viewsKeysByDesc(runs viewsRuns) map[string]string {
	out := map[string]string{}
	for _, r := range runs.Rows {
		out[fmt.Sprint(r.Sweep, " ", r.Values["method"], " ", r.Values["rank"], " ", r.Values["seed"])] = r.key()
	}
	return out
}

// viewsFixture reads testdata/views/<name> into v.
func viewsFixture(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "views", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("testdata/views/%s: %v", name, err)
	}
}
