package dashboard

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"peftbench/internal/browsertest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"peftbench/results"
)

// browser starts headless Chromium for the test, bounded by limit.
func browser(t *testing.T, limit time.Duration) context.Context {
	bin := browsertest.Chromium(t, "dashboard: the page")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, limit)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// screenshot writes the page to name in the test's temp dir, and to
// $PEFTBENCH_SCREENSHOTS when set.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("PEFTBENCH_SCREENSHOTS"); d != "" {
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, name), png, 0o644)
	}
	t.Logf("screenshot %s", p)
}

// waitJS polls the JavaScript expression until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("error").textContent + " | " + document.getElementById("filtererr").textContent + " | " + document.querySelector("#runs").innerText.slice(0, 600)`))
			t.Fatalf("%s: not within 15s (%s); page: %s", what, expr, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

// setFilter types expr into the filter box, replacing what it held.
func setFilter(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if err := chromedp.Do(ctx, jsDo(`document.getElementById("filter").value = ""`), chromedp.SendKeys(chromedp.ID("filter"), expr)); err != nil {
		t.Fatal(err)
	}
}

// jsDo runs a JavaScript statement for its effect.
func jsDo(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool]("(() => { "+expr+"; return true })()")(ctx, t)
		return chromedp.Void{}, err
	}
}

const rowIDs = `[...document.querySelectorAll("#runs tbody tr[data-run]")].map(r => r.dataset.run).sort().join(" ")`

// TestBrowser drives the page in headless Chromium over a folder whose
// trial t4 is running (its live log grows while the page is open): the
// table fills; a filter keeps the rows the data says; a parse error shows;
// group-by method and lr gives one row per configuration with n = its
// seeds and mean ± CI; t4's curve gains points without a reload; a tag
// typed in the page lands in annotations.json. Planted bugs it catches:
// the page not refetching on a version change (the curve row), `<` parsed
// as `<=` (t2's lr = 1e-2 row stays out of lr < 1e-2), the t quantile
// off (the ± text), a tag posted as a form (annotations.json unchanged).
func TestBrowser(t *testing.T) {
	ctx := browser(t, 90*time.Second)
	shots := t.TempDir()
	dir := filepath.Join(t.TempDir(), "quick")
	writeFixture(t, dir, "quick", standardTrials)
	lock, err := results.LockSweep(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "table fills", `document.querySelectorAll("#runs tbody tr").length === 6`)
	if got := evalString(t, ctx, `document.querySelector('tr[data-run="0:t4"] .status').textContent`); !strings.HasPrefix(got, "running") {
		t.Errorf("t4 status cell %q", got)
	}
	if got := evalString(t, ctx, `document.querySelector('tr[data-run="0:t3"] .reason').textContent`); got != "loss exploded at step 3" {
		t.Errorf("t3 reason %q", got)
	}
	screenshot(t, ctx, shots, "dashboard-table.png")

	for _, tc := range []struct{ expr, want string }{
		{`method == "lora" && lr < 1e-2`, "0:t0 0:t1"},
		{`lr <= 1e-2 && !(status == "ok")`, "0:t3 0:t4 0:t5"},
		{`status ~ /^(running|diverged)$/ || seed > 1 && method ~ "FUL"`, "0:t3 0:t4 0:t5"},
		{`target_metric >= 0.8`, "0:t0 0:t1"},
	} {
		setFilter(t, ctx, tc.expr)
		waitJS(t, ctx, "filter "+tc.expr, rowIDs+` === `+strconv.Quote(tc.want))
	}
	setFilter(t, ctx, `lr < `)
	waitJS(t, ctx, "parse error shown", `document.getElementById("filtererr").textContent.includes("expected a value")`)
	setFilter(t, ctx, `nosuch == 1`)
	waitJS(t, ctx, "unknown column shown", `document.getElementById("filtererr").textContent.includes("unknown column \"nosuch\"")`)
	screenshot(t, ctx, shots, "dashboard-filter-error.png")
	setFilter(t, ctx, `status != "pending"`)
	waitJS(t, ctx, "filter cleared", `document.querySelectorAll("#runs tbody tr").length === 5`)

	// Group by method and lr: three configurations, n = 2 seeds each but
	// the full one, whose pending seed the filter drops.
	if err := chromedp.Do(ctx, jsDo(`(() => { const s = document.getElementById("groupby");
		for (const o of s.options) o.selected = o.value === "method" || o.value === "lr";
		s.dispatchEvent(new Event("change")); })()`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "groups", `document.querySelectorAll("#runs tbody tr[data-group]").length === 3`)
	groups := evalString(t, ctx, `[...document.querySelectorAll("#runs tbody tr[data-group]")].map(r =>
		r.querySelector('[data-col="method"]').textContent + "/" + r.querySelector('[data-col="lr"]').textContent + ":" + r.querySelector('[data-col="n"]').textContent).sort().join(" ")`)
	if groups != "full/0.0001:1 lora/0.001:2 lora/0.01:2" {
		t.Errorf("groups %q", groups)
	}
	// target_metric of lora lr=1e-3: seeds 0.9 and 0.8: mean 0.85, 95% t
	// interval 12.706·0.0707/√2 = 0.6353.
	ci := evalString(t, ctx, `[...document.querySelectorAll("#runs tbody tr[data-group]")].find(r => r.querySelector('[data-col="lr"]').textContent === "0.001").querySelector('[data-col="target_metric"]').textContent`)
	if ci != "0.85 ± 0.6353" {
		t.Errorf("lora lr=1e-3 target_metric %q, want 0.85 ± 0.6353", ci)
	}
	hash := evalString(t, ctx, `location.hash`)
	if !strings.Contains(hash, "g=method%2Clr") || !strings.Contains(hash, "f=status") {
		t.Errorf("hash %q lacks the group and filter", hash)
	}
	screenshot(t, ctx, shots, "dashboard-groups.png")

	// Back to runs; select the running t4 and watch its curve grow.
	if err := chromedp.Do(ctx, jsDo(`(() => { const s = document.getElementById("groupby");
		for (const o of s.options) o.selected = false; s.dispatchEvent(new Event("change")); })()`),
		chromedp.Click(chromedp.CSS(`tr[data-run="0:t4"] input.sel`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "t4 curve", `(p => p && p.dataset.points === "4" && p.dataset.source === "live")(document.querySelector('path.curve[data-key="0:t4"]'))`)
	l, err := results.CreateLive(dir, "t4", 1, time.Now()) // the same attempt, rewritten longer
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 9; s++ {
		l.Append(int64(s), "train", "loss", 2/float64(s))
	}
	l.Close()
	waitJS(t, ctx, "t4 curve grows", `document.querySelector('path.curve[data-key="0:t4"]').dataset.points === "9"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-run="0:t0"] input.sel`)), chromedp.Click(chromedp.ID("logscale"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "two curves", `document.querySelectorAll("path.curve").length === 2`)
	screenshot(t, ctx, shots, "dashboard-curves.png")

	// A tag typed in the page.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`tr[data-run="0:t0"] input.addtag`), "best-run\r")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ann, err := results.ReadAnnotations(dir)
		if err == nil && slices.Contains(ann["t0"].Tags, "best-run") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("annotations.json: %v %v, want t0 tagged best-run", ann, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitJS(t, ctx, "tag shown", `document.querySelector('tr[data-run="0:t0"] .tag') !== null && document.querySelector('tr[data-run="0:t0"] .tag').textContent.startsWith("best-run")`)
	setFilter(t, ctx, `tags == "best-run"`)
	waitJS(t, ctx, "filter by tag", rowIDs+` === "0:t0"`)

	// The page's tabs draw views.js's views over the filtered runs: a
	// parallel-coordinates line per run and a Pareto point per finished run.
	// Planted bug: the page passing all runs, not the filtered ones (5 lines).
	setFilter(t, ctx, `status != "pending"`)
	for _, tc := range []struct{ tab, what, expr string }{
		{"parcoords", "a line per run", `document.querySelectorAll("#view svg path.pv-line").length === 5`},
		{"pareto", "a point per ok run", `document.querySelectorAll("#view svg circle").length >= 2`},
	} {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#tabs button[data-tab="`+tc.tab+`"]`))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, tc.tab+": "+tc.what, tc.expr)
		if got := evalString(t, ctx, `(document.querySelector("#view .error") || {textContent: ""}).textContent`); got != "" {
			t.Errorf("%s view: %s", tc.tab, got)
		}
		screenshot(t, ctx, shots, "dashboard-"+tc.tab+".png")
	}
}

// TestBrowserEscapes opens the page over a sweep whose name, a tag and a
// note hold markup: the page shows them as text, and no element they
// would inject exists. Planted bug: innerHTML for the sweep picker or a
// tag (an img or script element appears; the onerror sets a global).
func TestBrowserEscapes(t *testing.T) {
	ctx := browser(t, 60*time.Second)
	const evil = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`
	dir := t.TempDir()
	writeFixture(t, dir, evil, standardTrials[:2])
	if _, err := results.UpdateAnnotation(dir, "t0", func(a *results.Annotation) { a.Tags = []string{"<b>x</b>"}; a.Note = evil }); err != nil {
		t.Fatal(err)
	}
	srv, err := New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/#cols=sweep,method")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "table fills", `document.querySelectorAll("#runs tbody tr").length === 2`)
	checks := map[string]string{
		`String(document.querySelectorAll("script").length)`: "2", // app.js and views.js
		`String(document.querySelectorAll("img, b").length)`: "0",
		`String(window.pwned)`:                               "undefined",
		`document.getElementById("sweeps").textContent.includes(` + strconv.Quote(evil) + `) ? "yes" : "no"`:                          "yes",
		`document.querySelector('tr[data-run="0:t0"] .tag').firstChild.textContent`:                                                   "<b>x</b>",
		`document.querySelector('tr[data-run="0:t0"] input.note').value === ` + strconv.Quote(evil) + ` ? "yes" : "no"`:               "yes",
		`document.querySelector('tr[data-run="0:t0"] [data-col="sweep"]').textContent === ` + strconv.Quote(evil) + ` ? "yes" : "no"`: "yes",
	}
	for expr, want := range checks {
		if got := evalString(t, ctx, expr); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
	screenshot(t, ctx, t.TempDir(), "dashboard-escaped.png")

}
