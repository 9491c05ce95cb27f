package methods

import (
	"slices"
	"testing"

	"peftbench/nn"
)

// TestDropoutOnlyWhileTraining checks, for every method with a dropout
// option, that SetTraining(rng) makes the adapter path random and
// SetTraining(nil) restores the deterministic evaluation outputs.
func TestDropoutOnlyWhileTraining(t *testing.T) {
	for _, info := range Infos() {
		if !slices.ContainsFunc(info.Options, func(o Option) bool { return o.Name == "dropout" }) {
			continue
		}
		t.Run(info.Name, func(t *testing.T) {
			m := refModels(1)[0]
			att := attachRef(t, m, info.Name, map[string]any{"dropout": 0.5})
			train(t, m, att, 3, 1e-2) // move off the init so the adapter path matters
			evalOut := eval(m.out)
			att.SetTraining(nn.NewRNG(1, "dropout"))
			tr1 := eval(m.out)
			tr2 := eval(m.out)
			att.SetTraining(nil)
			if relDiff(tr1, evalOut) == 0 || relDiff(tr1, tr2) == 0 {
				t.Error("dropout on: outputs are deterministic")
			}
			if d := relDiff(eval(m.out), evalOut); d != 0 {
				t.Errorf("dropout off: outputs moved by %g", d)
			}
		})
	}
}
