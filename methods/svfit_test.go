package methods

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func init() {
	// σ' are r numbers a layer, singular values of size ~1: a larger
	// learning rate moves them far enough in 20 steps.
	addTorchCase(torchSpec{name: "svfit", method: "svfit", opts: map[string]any{"rank": 4}, lr: 5e-2, clip: 0.002})
}

// TestSVFitSpectrum: SVFit replaces W0's top-r singular values by the
// trained σ' and leaves the rest of the spectrum and every singular
// direction alone: after training, the singular values of the merged weight
// are σ' ∪ Σ_{r+1:}, computed by an SVD of Merged here, and W0's top-r
// singular pairs (u_p, v_p) are singular pairs of the merged weight with
// σ'_p.
func TestSVFitSpectrum(t *testing.T) {
	const r = 4
	m := refModels(1)[0]
	att := attachRef(t, m, "svfit", map[string]any{"rank": r})
	train(t, m, att, 5, 5e-2)
	for _, l := range m.targets {
		a := l.Adapter.(*SVFit)
		_, s0, _, err := svd(l.Weight.Data, l.Out, l.In)
		if err != nil {
			t.Fatal(err)
		}
		var moved float64
		want := slices.Clone(s0)
		for p := range r {
			want[p] = float64(a.Sigma.Data[p])
			moved = max(moved, math.Abs(want[p]-s0[p]))
		}
		if moved < 1e-3 {
			t.Fatalf("%s: σ' moved by %.3g only", l.Name, moved)
		}
		slices.SortFunc(want, func(a, b float64) int { return int(math.Copysign(1, b-a)) })
		_, got, _, err := svd(l.Merged(), l.Out, l.In)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-5*want[0] {
				t.Errorf("%s: singular value %d of the merged weight %.6g, want %.6g (σ' ∪ Σ_{r+1:})", l.Name, i, got[i], want[i])
				break
			}
		}
		// W0's top-r singular pairs are the merged weight's, with σ':
		// W'·v_p = σ'_p·u_p.
		var wv mat.Dense
		wv.Mul(dense(l.Merged(), l.Out, l.In), dense(a.Vt.Data, r, l.In).T())
		for p := range r {
			for i := range l.Out {
				if d := wv.At(i, p) - float64(a.Sigma.Data[p])*float64(a.U.Data[i*r+p]); math.Abs(d) > 1e-5*want[0] {
					t.Fatalf("%s: W'·v_%d off σ'·u_%d by %.3g", l.Name, p, p, d)
				}
			}
		}
	}
}
