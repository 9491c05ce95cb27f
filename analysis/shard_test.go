package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"peftbench/results"
	"peftbench/safetensors"
)

func float32s(m *mat.Dense) []float32 {
	r, c := m.Dims()
	out := make([]float32, 0, r*c)
	for i := range r {
		for j := range c {
			out = append(out, float32(m.At(i, j)))
		}
	}
	return out
}

// plantedLayer returns a rows×cols base with a decaying spectrum and a tuned
// matrix with one new direction far above σ₁ (one intruder) or, with
// planted false, a tiny full-rank perturbation (none).
func plantedLayer(rng *rand.Rand, name string, rows, cols int, planted bool) Layer {
	n := min(rows, cols)
	u, v := randOrthonormal(rng, rows, n), randOrthonormal(rng, cols, n)
	s := make([]float64, n)
	for i := range s {
		s[i] = 10 * math.Pow(0.9, float64(i))
	}
	w0 := compose(u, s, v)
	delta := randDense(rng, rows, cols)
	delta.Scale(1e-4, delta)
	if planted {
		// A direction orthogonal to every base left singular vector would
		// need rows > n; instead mix the weakest base directions evenly,
		// so it is far from each of them (|cos| = 1/√m).
		m := n / 2
		x := mat.NewVecDense(rows, nil)
		for i := n - m; i < n; i++ {
			x.AddScaledVec(x, 1/math.Sqrt(float64(m)), u.ColView(i))
		}
		y := mat.NewVecDense(cols, nil)
		y.CopyVec(v.ColView(n - 1))
		delta.Outer(30, x, y)
	}
	var w mat.Dense
	w.Add(w0, delta)
	return Layer{Name: name, Rows: rows, Cols: cols, Base: float32s(w0), Tuned: float32s(&w)}
}

func TestReadLayersAndFillShard(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	layers := []Layer{
		plantedLayer(rng, "fc2", 24, 24, true),
		plantedLayer(rng, "fc1", 16, 40, false),
	}
	var ts []safetensors.Tensor
	for _, l := range layers {
		shape := []int{l.Rows, l.Cols}
		ts = append(ts, safetensors.Tensor{Name: l.Name + ".base", Shape: shape, Data: l.Base},
			safetensors.Tensor{Name: l.Name + ".tuned", Shape: shape, Data: l.Tuned})
	}
	path := filepath.Join(t.TempDir(), "weights.safetensors")
	if err := safetensors.WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLayers(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "fc1" || got[1].Name != "fc2" || got[0].Rows != 16 || got[0].Cols != 40 {
		t.Fatalf("ReadLayers: got %d layers %+v", len(got), got)
	}

	eps := []float64{0.3, 0.5, 0.9}
	fill := func(cache *BaseCache) *results.Shard {
		s := &results.Shard{Trial: results.TrialRow{TrialID: "t1"}}
		s.Trial.ClearMetrics()
		if err := FillShard(context.Background(), s, got, ShardOptions{Cache: cache, Eps: eps, TopK: 5}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	cache := NewBaseCache(t.TempDir())
	s := fill(cache)
	if len(s.Spectra) != 16+24 {
		t.Errorf("spectra rows = %d, want min(out,in) summed = 40", len(s.Spectra))
	}
	perLayer := map[string]int{}
	for _, r := range s.Spectra {
		if r.TrialID != "t1" || len(r.Intruder) != len(eps) {
			t.Fatalf("row %+v", r)
		}
		if r.Index < 5 {
			if math.IsNaN(r.MaxCos) || r.MaxCos > 1+1e-9 {
				t.Errorf("%s[%d]: max cos %v", r.Layer, r.Index, r.MaxCos)
			}
			if r.Intruder[1] {
				perLayer[r.Layer]++
			}
		} else if !math.IsNaN(r.MaxCos) || r.Intruder[0] || r.Intruder[1] || r.Intruder[2] {
			t.Errorf("%s[%d] beyond top k: max cos %v, flags %v", r.Layer, r.Index, r.MaxCos, r.Intruder)
		}
	}
	if perLayer["fc1"] != 0 || perLayer["fc2"] != 1 {
		t.Errorf("intruders at ε=0.5 per layer = %v, want fc1 0 (small perturbation), fc2 1 (planted)", perLayer)
	}
	want := []results.IntruderCount{{Epsilon: 0.5, Count: 1}}
	if c := s.Trial.Intruders[1]; c != want[0] {
		t.Errorf("summed intruders at ε=0.5 = %+v, want %+v", c, want[0])
	}
	if s.Trial.Intruders[0].Count > s.Trial.Intruders[1].Count || s.Trial.Intruders[1].Count > s.Trial.Intruders[2].Count {
		t.Errorf("counts must not fall as ε grows: %+v", s.Trial.Intruders)
	}
	// fc2's ΔW is rank 1 plus noise, fc1's is noise: energy ranks 1 and > 1.
	if !(s.Trial.EnergyRank90 > 1 && s.Trial.EffectiveRank > 1) {
		t.Errorf("energy rank %v, effective rank %v", s.Trial.EnergyRank90, s.Trial.EffectiveRank)
	}
	// A fresh process with the on-disk cache, and one with a memory cache,
	// give identical rows.
	if again := fill(NewBaseCache(cache.dir)); !reflect.DeepEqual(nanFree(again), nanFree(s)) {
		t.Error("rerun from the disk cache differs")
	}
	if again := fill(nil); !reflect.DeepEqual(nanFree(again), nanFree(s)) {
		t.Error("rerun without a cache differs")
	}
}

// nanFree returns what FillShard wrote, NaNs (unequal to themselves)
// replaced by a sentinel so that DeepEqual compares it.
func nanFree(s *results.Shard) any {
	rows := append([]results.SpectrumRow(nil), s.Spectra...)
	for i := range rows {
		if math.IsNaN(rows[i].MaxCos) {
			rows[i].MaxCos = -7
		}
	}
	return []any{rows, s.Trial.Intruders, s.Trial.EffectiveRank, s.Trial.EnergyRank90}
}

func TestReadLayersErrors(t *testing.T) {
	sq := []float32{1, 0, 0, 1}
	cases := []struct {
		name string
		ts   []safetensors.Tensor
		want string
	}{
		{"no tuned", []safetensors.Tensor{{Name: "a.base", Shape: []int{2, 2}, Data: sq}}, "no .tuned"},
		{"no base", []safetensors.Tensor{{Name: "a.tuned", Shape: []int{2, 2}, Data: sq}}, "no .base"},
		{"stray", []safetensors.Tensor{{Name: "a.weight", Shape: []int{2, 2}, Data: sq}}, "neither"},
		{"shapes", []safetensors.Tensor{{Name: "a.base", Shape: []int{2, 2}, Data: sq}, {Name: "a.tuned", Shape: []int{4}, Data: sq}}, "shape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.safetensors")
			if err := safetensors.WriteFile(path, c.ts, nil); err != nil {
				t.Fatal(err)
			}
			_, err := ReadLayers(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestFillShardBadLayer(t *testing.T) {
	s := &results.Shard{}
	err := FillShard(context.Background(), s, []Layer{{Name: "x", Rows: 2, Cols: 2, Base: []float32{1}, Tuned: []float32{1, 2, 3, 4}}}, ShardOptions{})
	if err == nil || !strings.Contains(err.Error(), `layer "x"`) {
		t.Errorf("err = %v", err)
	}
}
