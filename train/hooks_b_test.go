package train_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"peftbench/methods"
	"peftbench/nn"
	"peftbench/train"
)

// probeB is a test-only method for the hooks of methods batch B: full
// fine-tuning of the targeted layers that calibrates on its layers'
// inputs (InputCalibrator), steps its own optimiser around the trial's
// (OptimizerMaker) and offers the base weights as a variant (Variants).
type probeB struct{}

func (probeB) Info() methods.Info {
	return methods.Info{Name: "test-probe-b", Family: "full", Summary: "records batch B's hook calls", ParamsFormula: "Σ out·in + out"}
}

func (probeB) Attach(layers []*nn.Linear, _ methods.Options, _ *nn.RNG) (methods.Attachment, error) {
	at := &probeBAttachment{probeAttachment: probeAttachment{layers: layers}}
	for _, l := range layers {
		f := methods.NewFull(l)
		l.Adapter = f
		at.fulls = append(at.fulls, f)
		at.bias0 = append(at.bias0, slices.Clone(l.Bias.Data))
		at.params = append(at.params, f.Params()...)
	}
	probes.Lock()
	probes.lastB = at
	probes.Unlock()
	return at, nil
}

func (probeB) TrainableParams(layers []methods.LayerShape, o methods.Options) int64 {
	return probe{}.TrainableParams(layers, o)
}

func init() { methods.Register("test-probe-b", probeB{}) }

type probeBAttachment struct {
	probeAttachment
	fulls   []*methods.Full
	bias0   [][]float32 // the biases at Attach (Full keeps W0 only)
	inputs  []int       // per layer: input elements the calibration saw
	base    nn.Optimizer
	steps   int
	trained [][]float32 // the trained weights and biases while the "base" variant is in use
}

func (at *probeBAttachment) CalibrateInputs(est methods.InputEstimator) error {
	at.calls = append(at.calls, "CalibrateInputs")
	in, err := est(at.layers, 2)
	for _, x := range in {
		at.inputs = append(at.inputs, len(x))
	}
	return err
}

func (at *probeBAttachment) Optimizer(base nn.Optimizer) (nn.Optimizer, error) {
	at.calls = append(at.calls, "Optimizer")
	at.base = base
	return at, nil
}

// Step is the method's optimiser: the trial's, counted.
func (at *probeBAttachment) Step(params []nn.ParamRef, lr float32) {
	at.steps++
	at.base.Step(params, lr)
}

func (at *probeBAttachment) StateBytes() int64 { return 3 * at.base.(nn.StateSizer).StateBytes() }

func (at *probeBAttachment) Variants() []string { return []string{"base"} }

func (at *probeBAttachment) UseVariant(v string) {
	at.calls = append(at.calls, "UseVariant("+v+")")
	switch {
	case v == "base" && at.trained == nil:
		for i, f := range at.fulls {
			at.trained = append(at.trained, slices.Clone(f.W.Data), slices.Clone(f.B.Data))
			copy(f.W.Data, f.Base)
			copy(f.B.Data, at.bias0[i])
		}
	case v == "" && at.trained != nil:
		for i, f := range at.fulls {
			copy(f.W.Data, at.trained[2*i])
			copy(f.B.Data, at.trained[2*i+1])
		}
		at.trained = nil
	}
}

// TestHooksBatchB: the trainer calibrates on the layers' inputs before
// training (two batches of Batch rows, In columns each), steps the
// method's optimiser in place of AdamW every step and reports its state
// size as optimizer_state_bytes, and evaluates each variant after
// training, restoring the trained model before its final metrics.
func TestHooksBatchB(t *testing.T) {
	cfg := teacherShift("test-probe-b", nil)
	cfg.Steps = 6
	rec := &recorder{}
	if err := (&train.Trainer{Cache: cache, NoWeights: true}).Run(context.Background(), cfg, t.TempDir(), rec); err != nil {
		t.Fatal(err)
	}
	probes.Lock()
	at := probes.lastB
	probes.Unlock()
	calls := slices.DeleteFunc(slices.Clone(at.calls), func(c string) bool { return c == "BeforeStep" || c == "AfterStep" })
	if want := []string{"CalibrateInputs", "Optimizer", "UseVariant(base)", "UseVariant()"}; !slices.Equal(calls, want) {
		t.Errorf("hook calls %v, want %v", calls, want)
	}
	for i, l := range at.layers {
		if at.inputs[i] != 2*cfg.Batch*l.In {
			t.Errorf("%s: calibration saw %d input elements, want 2 batches × %d rows × %d", l.Name, at.inputs[i], cfg.Batch, l.In)
		}
	}
	if adam, ok := at.base.(*nn.AdamW); !ok || adam.Beta2 != float32(cfg.Beta2) {
		t.Errorf("Optimizer got %#v, want the trial's AdamW", at.base)
	}
	if at.steps != cfg.Steps {
		t.Errorf("the method's optimiser stepped %d times, want %d", at.steps, cfg.Steps)
	}
	s := rec.summary
	var n float64
	for _, l := range at.layers {
		n += float64(l.Out*l.In + l.Out)
	}
	if got := s["optimizer_state_bytes"]; got != 3*8*n {
		t.Errorf("optimizer_state_bytes %g, want the method's figure %g (3 × AdamW's)", got, 3*8*n)
	}
	if math.Abs(s["target_loss_base"]-s["target_loss_before"]) > 1e-12 || s["target_loss_base"] == s["target_loss"] {
		t.Errorf("target_loss_base %g: want the base model's %g (the trained model has %g)", s["target_loss_base"], s["target_loss_before"], s["target_loss"])
	}
	for _, k := range []string{"target_metric_base", "val_loss_base", "val_metric_base"} {
		if _, ok := s[k]; !ok {
			t.Errorf("no %s summary", k)
		}
	}
}
