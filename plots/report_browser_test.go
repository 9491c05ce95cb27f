package plots

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"peftbench/internal/browsertest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"peftbench/configs"
)

// browserReport is the browser tests' set-up: skipped under -short or
// without Chromium, it writes the report of a copy of the fixture and
// returns the browser, the report's path and the fixture's data.
func browserReport(t *testing.T) (bin, path string, d *Data) {
	t.Helper()
	bin = browsertest.Chromium(t, "plots: report.html")
	dir := copyFixture(t)
	path, err := WriteReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	return bin, path, d
}

// TestReportInBrowser opens report.html in headless Chromium and checks
// that every figure loaded (an inline script writes the count of loaded
// images into body[data-figures]) and that the console logged no error,
// then saves a screenshot next to the report.
func TestReportInBrowser(t *testing.T) {
	bin, path, d := browserReport(t)
	figs, _, err := Figures(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + path

	// 1. The DOM after the load event: every image decoded, no script error.
	dom, logs := browsertest.Run(t, bin, "--dump-dom", url)
	m := regexp.MustCompile(`data-figures="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no data-figures attribute in the dumped DOM; stderr:\n%s", logs)
	}
	want := fmt.Sprintf("%d/%d", len(figs), len(figs))
	if m[1] != want {
		t.Errorf("figures loaded: %q, want %q (every image complete with a natural width, no script error)", m[1], want)
	}
	if errs := browsertest.ConsoleErrors(logs); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}

	// 2. A screenshot, kept for people to look at.
	shot := filepath.Join(filepath.Dir(path), "report.png")
	_, logs = browsertest.Run(t, bin, "--screenshot="+shot, "--window-size=1200,3000", url)
	info, err := os.Stat(shot)
	if err != nil || info.Size() < 10_000 {
		t.Fatalf("no screenshot (%v); stderr:\n%s", err, logs)
	}
	if out := os.Getenv("PEFTBENCH_SCREENSHOT"); out != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("screenshot: %s (%d bytes)", shot, info.Size())
}

// TestReportParetoInBrowser drives the report's Pareto view in headless
// Chromium: a URL fragment sets the task and axis selectors and types into
// the filter box through their own change and input events (the page
// applies a fragment on load exactly as a reader's choices), and the
// dumped DOM must hold one point per configuration with both columns,
// placed where the selected columns' means put them, the Pareto front the
// columns' directions give, and only the table rows the filter matches.
// The expectations are computed here from the results, not from the page.
func TestReportParetoInBrowser(t *testing.T) {
	bin, path, d := browserReport(t)
	for _, tc := range []struct {
		name                 string
		task, x, y, filter   string
		hash                 bool // false: the page's defaults, no fragment
		wantFront, wantCount int  // -1: not checked by number
	}{
		{"defaults", "safety-guard", "trainable_params", "target_metric", "", false, -1, 17},
		{"learn-forget", "teacher-shift", "forgetting", "target_metric", "", true, -1, 17},
		{"extra metric", "safety-guard", "target_metric", "refusal_retention", "", true, -1, 17},
		{"cost axes", "teacher-shift", "wall_seconds", "trainable_params", "", true, 1, 17},
		{"filtered", "teacher-shift", "forgetting", "target_metric", "pissa", true, -1, 4},
		{"two words", "safety-guard", "trainable_params", "forgetting", "lora r=8", true, -1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "file://" + path
			if tc.hash {
				url += fmt.Sprintf("#task=%s&x=%s&y=%s", tc.task, tc.x, tc.y)
				if tc.filter != "" {
					url += "&filter=" + strings.ReplaceAll(tc.filter, " ", "%20")
				}
			}
			dom, logs := browsertest.Run(t, bin, "--dump-dom", url)
			if errs := browsertest.ConsoleErrors(logs); len(errs) > 0 {
				t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
			}
			svg := attrs(t, dom, `<svg id="pareto-svg"`)
			if svg["data-task"] != tc.task || svg["data-x"] != tc.x || svg["data-y"] != tc.y {
				t.Fatalf("view shows task %q, x %q, y %q; want %q, %q, %q", svg["data-task"], svg["data-x"], svg["data-y"], tc.task, tc.x, tc.y)
			}
			want := expectPareto(d, tc.task, tc.x, tc.y, tc.filter)
			if len(want) != tc.wantCount {
				t.Fatalf("the test's own expectation has %d points, want %d: fix the case", len(want), tc.wantCount)
			}
			got := domPoints(dom)
			if len(got) != len(want) || svg["data-count"] != fmt.Sprint(len(want)) {
				t.Fatalf("%d points drawn (data-count %s), want %d", len(got), svg["data-count"], len(want))
			}
			// The axes: [min, max] of the expected means with 5% margins,
			// log10 when positive over two decades or more.
			area := floats(t, svg["data-area"]) // left, top, right, bottom
			var xs, ys []float64
			for _, p := range want {
				xs, ys = append(xs, p.x), append(ys, p.y)
			}
			fx, xdom, xlog := axisMap(xs, area[0], area[2])
			fy, ydom, ylog := axisMap(ys, area[3], area[1])
			if (svg["data-xscale"] == "log") != xlog || (svg["data-yscale"] == "log") != ylog {
				t.Errorf("scales %s/%s, want log %v/%v", svg["data-xscale"], svg["data-yscale"], xlog, ylog)
			}
			// The domains pin the values themselves (positions alone
			// cannot tell a uniformly scaled column from the right one).
			for _, ax := range []struct {
				attr string
				want [2]float64
			}{{"data-xdomain", xdom}, {"data-ydomain", ydom}} {
				got := floats(t, svg[ax.attr])
				for k := range 2 {
					if math.Abs(got[k]-ax.want[k]) > 1e-9*max(1, math.Abs(ax.want[k])) {
						t.Errorf("%s = %v, want %v", ax.attr, got, ax.want)
						break
					}
				}
			}
			for _, p := range want {
				g, ok := got[p.label]
				if !ok {
					t.Errorf("no point for %s", p.label)
					continue
				}
				if math.Abs(g.cx-fx(p.x)) > 0.01 || math.Abs(g.cy-fy(p.y)) > 0.01 {
					t.Errorf("%s at (%.2f, %.2f), want (%.2f, %.2f) for %s = %.4g, %s = %.4g", p.label, g.cx, g.cy, fx(p.x), fy(p.y), tc.x, p.x, tc.y, p.y)
				}
				if g.front != p.front {
					t.Errorf("%s: on the front %v, want %v", p.label, g.front, p.front)
				}
			}
			nf := 0
			for _, p := range want {
				if p.front {
					nf++
				}
			}
			if svg["data-front"] != fmt.Sprint(nf) || tc.wantFront >= 0 && nf != tc.wantFront {
				t.Errorf("front of %s points (expected %d, case %d)", svg["data-front"], nf, tc.wantFront)
			}
			// The filter box narrows the results tables too.
			shown, hidden := tableRows(dom)
			wantShown := 0
			for _, task := range d.Tasks() {
				for _, c := range d.Cells(task) {
					if matchesFilter(filterText(c), tc.filter) {
						wantShown++
					}
				}
			}
			if shown != wantShown || (tc.filter == "" && hidden != 0) {
				t.Errorf("filter %q: %d table rows shown, %d hidden; want %d shown", tc.filter, shown, hidden, wantShown)
			}
		})
	}
}

type paretoWant struct {
	label string
	x, y  float64
	front bool
}

// expectPareto is the view's content computed from the results: the
// task's configurations matching the filter with both columns, their
// means over seeds, and which are on the Pareto front.
func expectPareto(d *Data, task, x, y, filter string) []paretoWant {
	cx, _ := configs.Lookup(x)
	cy, _ := configs.Lookup(y)
	mean := func(c *Cell, col configs.Column) (float64, bool) {
		var vs []float64
		for _, tr := range c.Trials {
			if v := col.Value(tr); !math.IsNaN(v) {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return 0, false
		}
		s := 0.0
		for _, v := range vs {
			s += v
		}
		return s / float64(len(vs)), true
	}
	var out []paretoWant
	for _, c := range d.Cells(task) {
		if !matchesFilter(filterText(c), filter) {
			continue
		}
		mx, okx := mean(c, cx)
		my, oky := mean(c, cy)
		if okx && oky {
			out = append(out, paretoWant{label: c.Label(), x: mx, y: my})
		}
	}
	// better is "at least as good" by the column's direction.
	better := func(a, b float64, col configs.Column) bool { return col.Higher && a >= b || !col.Higher && a <= b }
	for i := range out {
		out[i].front = true
		for j := range out {
			p, q := out[i], out[j]
			if i != j && better(q.x, p.x, cx) && better(q.y, p.y, cy) && (q.x != p.x || q.y != p.y) {
				out[i].front = false
				break
			}
		}
	}
	return out
}

func matchesFilter(text, filter string) bool {
	for _, w := range strings.Fields(strings.ToLower(filter)) {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// axisMap is the pixel map of an axis over [p0, p1] for values vs, its
// domain (in log10 units on a log axis) and whether it is logarithmic.
func axisMap(vs []float64, p0, p1 float64) (func(float64) float64, [2]float64, bool) {
	lo, hi := slices.Min(vs), slices.Max(vs)
	log := lo > 0 && hi/lo >= 100
	tr := func(v float64) float64 { return v }
	if log {
		tr = math.Log10
	}
	d0, d1 := tr(lo), tr(hi)
	pad := (d1 - d0) * 0.05
	if pad == 0 {
		pad = math.Abs(d0) * 0.05
		if pad == 0 {
			pad = 0.5
		}
	}
	d0, d1 = d0-pad, d1+pad
	return func(v float64) float64 { return p0 + (tr(v)-d0)/(d1-d0)*(p1-p0) }, [2]float64{d0, d1}, log
}

type domPoint struct {
	cx, cy float64
	front  bool
}

var ptRE = regexp.MustCompile(`<g class="pt( front)?" transform="translate\(([-0-9.e]+),([-0-9.e]+)\)" data-label="([^"]*)"`)

// domPoints reads the drawn points by label.
func domPoints(dom string) map[string]domPoint {
	out := map[string]domPoint{}
	for _, m := range ptRE.FindAllStringSubmatch(dom, -1) {
		x, _ := strconv.ParseFloat(m[2], 64)
		y, _ := strconv.ParseFloat(m[3], 64)
		out[html.UnescapeString(m[4])] = domPoint{x, y, m[1] != ""}
	}
	return out
}

// tableRows counts the results tables' rows shown and hidden.
func tableRows(dom string) (shown, hidden int) {
	for _, m := range regexp.MustCompile(`<tr data-filter="[^"]*"( style="[^"]*")?>`).FindAllStringSubmatch(dom, -1) {
		if strings.Contains(m[1], "display: none") {
			hidden++
		} else {
			shown++
		}
	}
	return shown, hidden
}

// attrs returns the attributes of the first tag starting with prefix.
func attrs(t *testing.T, dom, prefix string) map[string]string {
	t.Helper()
	i := strings.Index(dom, prefix)
	if i < 0 {
		t.Fatalf("no %s in the dumped DOM", prefix)
	}
	tag := dom[i : i+strings.Index(dom[i:], ">")]
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z-]+)="([^"]*)"`).FindAllStringSubmatch(tag, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

func floats(t *testing.T, s string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		out = append(out, v)
	}
	return out
}
