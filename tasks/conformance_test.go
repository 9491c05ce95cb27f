package tasks

import (
	"context"
	"slices"
	"testing"

	"peftbench/nn"
)

// quickTasks pretrain in seconds; the others only without -short.
var quickTasks = map[string]bool{"teacher-shift": true, "safety-guard": true}

// TestConformance checks every registered task: the base reaches the
// task's documented retain accuracy, forgetting of the untouched base is
// exactly 0, and a short full fine-tuning raises the target accuracy and
// gives forgetting > 0.
func TestConformance(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && !quickTasks[name] {
				t.Skip("pretrains for minutes; run without -short")
			}
			task, _ := Lookup(name)
			info := task.Info()
			in, err := New(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			base, err := in.Base(context.Background(), testCache)
			if err != nil {
				t.Fatal(err)
			}
			g := &nn.Graph{NoGrad: true}
			_, acc := Evaluate(g, base, in.Retain())
			if acc < info.BaseAccuracy {
				t.Errorf("base retain accuracy %.4f < documented %.4f", acc, info.BaseAccuracy)
			}
			o, _ := ResolveOptions(name, nil)
			if got, want := shapes(base), task.Layers(o); !equalShapes(got, want) {
				t.Errorf("Layers = %v, model has %v", want, got)
			}
			var norms []NormShape
			for _, n := range base.Norms() {
				norms = append(norms, NormShape{Name: n.Name, Dim: n.Dim(), Bias: n.Bias != nil})
			}
			if want, _ := Norms(name, nil); !slices.Equal(norms, want) {
				t.Errorf("Norms = %v, model has %v", want, norms)
			}
			same := base.Clone()
			if kl, ce := Forgetting(g, same, base, in.Retain()); kl != 0 || ce <= 0 {
				t.Errorf("untouched base: forgetting %v (want exactly 0), forgetting_ce %v (want the entropy > 0)", kl, ce)
			}
			tuned := base.Clone()
			_, before := Evaluate(g, tuned, in.Target())
			fullFineTune(tuned, in, 150)
			s := Summary(g, tuned, base, in)
			if s["target_accuracy"] <= before {
				t.Errorf("full fine-tuning: target accuracy %.4f, not above %.4f", s["target_accuracy"], before)
			}
			if s["forgetting"] <= 0 {
				t.Errorf("full fine-tuning: forgetting %v, want > 0", s["forgetting"])
			}
			for _, m := range info.Metrics {
				if _, ok := s[m]; !ok {
					t.Errorf("Summary lacks declared metric %q", m)
				}
			}
			t.Logf("base retain acc %.4f; tuned target acc %.4f → %.4f, retain acc %.4f, forgetting %.4f (ce %.4f)",
				acc, before, s["target_accuracy"], s["retain_accuracy"], s["forgetting"], s["forgetting_ce"])
		})
	}
}

// fullFineTune trains every tensor of m on the task's fine-tuning data.
func fullFineTune(m Model, in Instance, steps int) {
	var ps []nn.ParamRef
	for _, l := range m.Linears() {
		ps = append(ps, nn.ParamRef{Name: l.Weight.Name, T: l.Weight, LRMul: 1})
		if l.Bias != nil {
			ps = append(ps, nn.ParamRef{Name: l.Bias.Name, T: l.Bias, LRMul: 1})
		}
	}
	ps = append(ps, m.Params()...)
	nn.SetTrainable(ps, true)
	defer nn.SetTrainable(ps, false)
	opt := nn.NewAdamW()
	rng := nn.NewRNG(1, "finetune")
	g := nn.NewGraph()
	for range steps {
		b := in.TrainBatch(rng, 64)
		g.Reset()
		nn.ZeroGrads(ps)
		loss := g.CrossEntropy(m.Logits(g, b), b.Labels)
		g.Backward(loss)
		nn.ClipGradNorm(ps, 1)
		opt.Step(ps, 1e-3)
	}
}

func shapes(m Model) []LayerShape {
	var s []LayerShape
	for _, l := range m.Linears() {
		s = append(s, LayerShape{Name: l.Name, Out: l.Out, In: l.In, Bias: l.Bias != nil})
	}
	return s
}

func equalShapes(a, b []LayerShape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
