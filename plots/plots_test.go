package plots

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"peftbench/methods"
	"peftbench/results"
)

func TestMethodStyle(t *testing.T) {
	seen := map[string]string{}
	for _, m := range knownMethods {
		s := MethodStyle(m.name)
		key := fmt.Sprintf("%v/%s/%v", s.Color, typeName(s.Glyph), s.Dash)
		if other, ok := seen[key]; ok {
			t.Errorf("%s and %s are drawn alike (%s)", m.name, other, key)
		}
		seen[key] = m.name
	}
	for _, name := range []string{"ia3", "my-method", "lora", "another-method"} {
		a, b := MethodStyle(name), MethodStyle(name)
		if a.Color != b.Color || typeName(a.Glyph) != typeName(b.Glyph) || len(a.Dash) != len(b.Dash) {
			t.Errorf("MethodStyle(%q) is not stable", name)
		}
	}
	// Every registered method has a fixed style, not a hashed one.
	for _, name := range methods.Names() {
		if !slices.ContainsFunc(knownMethods, func(m struct {
			name  string
			style Style
		}) bool {
			return m.name == name
		}) {
			t.Errorf("method %s has no fixed style in knownMethods", name)
		}
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestParetoFront(t *testing.T) {
	pts := points{{x: 1, y: 0.5}, {x: 2, y: 0.7}, {x: 2, y: 0.6}, {x: 3, y: 0.65}, {x: 4, y: 0.9}, {x: 0.5, y: 0.4}}
	got := paretoFront(pts, true)
	var xs []float64
	for _, q := range got {
		xs = append(xs, q.x, q.y)
	}
	want := []float64{0.5, 0.4, 1, 0.5, 2, 0.7, 4, 0.9}
	if !slices.Equal(xs, want) {
		t.Errorf("front = %v, want %v", xs, want)
	}
}

func TestSIFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{1, "1"}, {500, "500"}, {1000, "1k"}, {1500, "1.5k"}, {2e6, "2M"}, {7.1e9, "7.1B"}} {
		if got := siFormat(tc.v); got != tc.want {
			t.Errorf("siFormat(%g) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestSkips checks that figures without data are skipped with a reason,
// never drawn empty, by removing what each figure needs from the fixture.
func TestSkips(t *testing.T) {
	base, err := Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(d *Data)
		skip   []string // kinds that must be skipped for every task
		remain []string // kinds that must still be drawn
	}{
		{"no spectra", func(d *Data) { d.Spectra = nil }, []string{"spectrum", "maxcos"}, []string{"intruders", "metric-vs-rank"}},
		{"no steps", func(d *Data) { d.Steps = nil }, []string{"curves"}, []string{"forgetting-law"}},
		{"no forgetting", func(d *Data) {
			for i := range d.Trials {
				d.Trials[i].Forgetting = math.NaN()
			}
			d.Steps = nil
		}, []string{"learn-forget", "forgetting-law"}, []string{"efficiency"}},
		{"no intruder counts", func(d *Data) {
			for i := range d.Trials {
				d.Trials[i].Intruders = nil
			}
		}, []string{"intruders"}, []string{"spectrum"}},
		{"no refusal retention", func(d *Data) {
			for i := range d.Trials {
				d.Trials[i].Extra = nil
			}
		}, []string{"safety"}, []string{"metric-vs-rank"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Data{Dir: base.Dir, Manifest: base.Manifest, Trials: slices.Clone(base.Trials),
				Steps: slices.Clone(base.Steps), Spectra: slices.Clone(base.Spectra)}
			tc.edit(d)
			d.index()
			figs, skips, err := Figures(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.skip {
				for _, f := range figs {
					if f.Kind == k {
						t.Errorf("%s drawn without its data", f.Name)
					}
				}
				if !slices.ContainsFunc(skips, func(s Skip) bool { return s.Kind == k && s.Reason != "" }) {
					t.Errorf("no skip message for %s: %v", k, skips)
				}
			}
			for _, k := range tc.remain {
				if !slices.ContainsFunc(figs, func(f *Figure) bool { return f.Kind == k }) {
					t.Errorf("%s no longer drawn", k)
				}
			}
		})
	}
}

// TestLoadShards reads a sweep that has not been compacted yet from its
// shards, and a folder that is not a results folder as an error.
func TestLoadShards(t *testing.T) {
	dir := t.TempDir()
	shards := fixtureShards()[:6]
	for _, s := range shards {
		if err := results.WriteShard(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Compacted || len(d.Trials) != 6 || d.Manifest != nil {
		t.Errorf("compacted %v, %d trials, manifest %v; want shards, 6 trials, no manifest", d.Compacted, len(d.Trials), d.Manifest)
	}
	for i, tr := range d.Trials {
		if tr.Index != int64(i) {
			t.Errorf("trial %d has plan index %d: not in plan order", i, tr.Index)
		}
	}
	if _, err := Load(filepath.Join(dir, "trials")); err == nil || !strings.Contains(err.Error(), "not a results folder") {
		t.Errorf("Load of a non-results folder: %v", err)
	}
	os.WriteFile(filepath.Join(dir, results.TrialsFile), []byte("not parquet"), 0o644)
	if _, err := Load(dir); err == nil {
		t.Error("Load of a damaged trials.parquet: no error")
	}
}

func TestFits(t *testing.T) {
	d, err := Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	fits := d.Fits("teacher-shift")
	byName := map[string]*LawFit{}
	for _, f := range fits {
		byName[f.Name] = f
	}
	// The fixture's forgetting is 0.01 + 0.0009·P^0.45 (+15% for pissa,
	// noise): the fitted exponent's CI must cover 0.45, the linear law
	// must slope down.
	p := byName["P"]
	if p == nil || p.Fit == nil {
		t.Fatalf("no fit against P: %+v", p)
	}
	if _, lo, hi, _ := p.Fit.Param("alpha"); !(lo < 0.45 && 0.45 < hi) {
		t.Errorf("α CI [%g, %g] misses the generating 0.45", lo, hi)
	}
	if l := byName["L_ft"]; l == nil || l.Fit == nil {
		t.Error("no fit against the fine-tuning loss")
	} else if b, _, _, _ := l.Fit.Param("b"); b <= 0 {
		t.Errorf("forgetting rises with fine-tuning loss (b = %g), the fixture has it fall", b)
	}
	if n := byName["N"]; n == nil || n.Source != results.StepsFile {
		t.Errorf("the N law should come from steps.parquet (steps are fixed across trials): %+v", n)
	} else if n.Degenerate == nil || !strings.Contains(n.Degenerate.Error(), "R² = 0.14 below 0.5") {
		// Forgetting logged per step pools trials whose final forgetting
		// differs by method: N explains little of it (R² 0.14), the fit
		// bench fit's rule refuses and the report must not draw as a law.
		t.Errorf("the N law from steps.parquet (R² %.3f) is not marked degenerate: %v", n.Fit.R2, n.Degenerate)
	}
	if p.Degenerate != nil {
		t.Errorf("the P law (R² %.3f) is marked degenerate: %v", p.Fit.R2, p.Degenerate)
	}
	if _, ok := byName["P,N"]; ok {
		t.Error("joint P,N fit with a constant N")
	}
}

// TestFormats checks every format encodes to a file of its kind.
func TestFormats(t *testing.T) {
	d, err := Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	figs, _, err := Figures(d, []string{"efficiency"})
	if err != nil || len(figs) == 0 {
		t.Fatalf("%v, %d figures", err, len(figs))
	}
	for _, tc := range []struct{ format, magic string }{
		{"png", "\x89PNG\r\n"}, {"svg", "<?xml"}, {"pdf", "%PDF-"},
	} {
		b, err := figs[0].Encode(tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), tc.magic) || len(b) < 2000 {
			t.Errorf("%s: %d bytes starting %q", tc.format, len(b), b[:min(len(b), 8)])
		}
	}
	if _, err := figs[0].Encode("gif"); err == nil {
		t.Error("gif: no error")
	}
}
