package regress

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestReadPerfShapes(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
		err      string
	}{
		{"array", `[{"name":"sgemm/n=1024","value":80.5,"unit":"GFLOP/s"},{"name":"step/mlp/lora","value":3.2,"unit":"ms"}]`, 2, ""},
		{"array-of-arrays", `[[{"name":"a","value":1,"unit":"ms"}],[{"name":"a","value":2,"unit":"ms"}]]`, 2, ""},
		{"appended-runs", "[{\"name\":\"a\",\"value\":1,\"unit\":\"ms\"}]\n[{\"name\":\"a\",\"value\":2,\"unit\":\"ms\"}]\n", 2, ""},
		{"json-lines", "{\"name\":\"a\",\"value\":1,\"unit\":\"ms\"}\n{\"name\":\"a\",\"value\":2,\"unit\":\"ms\"}\n", 2, ""},
		{"empty", ``, 0, "no figures"},
		{"no-name", `[{"value":1,"unit":"ms"}]`, 0, "without a name"},
		{"wrong-type", `[{"name":"a","value":"fast","unit":"ms"}]`, 0, "want {"},
		{"broken", `[{"name":"a",`, 0, "perf JSON"},
	} {
		got, err := ReadPerf(strings.NewReader(tc.in))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == "" && len(got) != tc.want:
			t.Errorf("%s: %d samples, want %d", tc.name, len(got), tc.want)
		}
	}
}

func TestUnitDirection(t *testing.T) {
	for _, tc := range []struct {
		unit          string
		higher, known bool
	}{
		{"GFLOP/s", true, true}, {"tokens/s", true, true}, {"ms", false, true}, {"ns/op", false, true},
		{"bytes", false, true}, {"B/op", false, true}, {"allocs/op", false, true}, {"s", false, true},
		{"widgets", false, false},
	} {
		h, k := unitHigherIsBetter(tc.unit)
		if h != tc.higher || k != tc.known {
			t.Errorf("unit %q: higher=%v known=%v, want %v %v", tc.unit, h, k, tc.higher, tc.known)
		}
	}
}

// perfRuns draws runs of bench perf with 2% noise; slow scales the named
// figure's value.
func perfRuns(rng *rand.Rand, runs int, scale map[string]float64) []PerfSample {
	figs := []PerfSample{
		{"sgemm/n=1024", 80, "GFLOP/s"},
		{"step/mlp/lora", 3, "ms"},
		{"peak/mlp/lora", 1 << 20, "bytes"},
	}
	var out []PerfSample
	for range runs {
		for _, f := range figs {
			v := f.Value * (1 + 0.02*rng.NormFloat64())
			if s, ok := scale[f.Name]; ok {
				v *= s
			}
			out = append(out, PerfSample{f.Name, v, f.Unit})
		}
	}
	return out
}

func TestComparePerf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		runs  int
		scale map[string]float64
		drop  string
		want  []string
	}{
		{"unchanged", 5, nil, "", nil},
		{"gflops-down-15pct", 5, map[string]float64{"sgemm/n=1024": 0.85}, "", []string{"sgemm/n=1024 GFLOP/s REGRESSED"}},
		{"gflops-up-15pct", 5, map[string]float64{"sgemm/n=1024": 1.15}, "", nil},
		{"ms-up-15pct", 5, map[string]float64{"step/mlp/lora": 1.15}, "", []string{"step/mlp/lora ms REGRESSED"}},
		{"bytes-up-15pct", 5, map[string]float64{"peak/mlp/lora": 1.15}, "", []string{"peak/mlp/lora bytes REGRESSED"}},
		{"one-run-each-warns", 1, map[string]float64{"step/mlp/lora": 1.5}, "", nil},
		{"figure-missing", 5, nil, "step/mlp/lora", []string{"step/mlp/lora ms MISSING"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, uint64(len(tc.name))))
			base := perfRuns(rng, tc.runs, nil)
			cur := slices.DeleteFunc(perfRuns(rng, tc.runs, tc.scale), func(s PerfSample) bool { return s.Name == tc.drop })
			rep, err := ComparePerf(base, cur, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := failing(rep); !slices.Equal(got, tc.want) {
				t.Errorf("failing rows %q, want %q", got, tc.want)
			}
			if tc.runs == 1 && len(rep.Warnings) == 0 {
				t.Error("one run each: no warning")
			}
		})
	}
}

func TestComparePerfUnitMismatch(t *testing.T) {
	_, err := ComparePerf([]PerfSample{{"a", 1, "ms"}}, []PerfSample{{"a", 1, "s"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `"ms" and "s"`) {
		t.Errorf("error %v", err)
	}
}

func ExampleComparePerf() {
	var base, cur []PerfSample
	for i := range 5 {
		base = append(base, PerfSample{"sgemm/n=512", 60 + float64(i)/10, "GFLOP/s"})
		cur = append(cur, PerfSample{"sgemm/n=512", 48 + float64(i)/10, "GFLOP/s"})
	}
	rep, _ := ComparePerf(base, cur, Options{})
	for _, r := range rep.Rows {
		fmt.Printf("%s %+.0f%% p=%.3f %s\n", r.Name, 100*r.Comparison.Delta, r.Comparison.P, r.Verdict)
	}
	// Output: sgemm/n=512 -20% p=0.008 REGRESSED
}
