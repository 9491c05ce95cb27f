package train_test

import (
	"context"
	"sync"
	"testing"

	"peftbench/methods"
	"peftbench/nn"
	"peftbench/train"
)

// probe is a test-only method: full fine-tuning of the targeted layers
// plus every hook of the trainer contract, recording what each sees.
type probe struct{}

func (probe) Info() methods.Info {
	return methods.Info{Name: "test-probe", Family: "full", Summary: "records the trainer's hook calls", ParamsFormula: "Σ out·in + out"}
}

func (probe) Attach(layers []*nn.Linear, _ methods.Options, _ *nn.RNG) (methods.Attachment, error) {
	at := &probeAttachment{layers: layers}
	for _, l := range layers {
		f := methods.NewFull(l)
		l.Adapter = f
		at.params = append(at.params, f.Params()...)
	}
	probes.Lock()
	probes.last = at
	probes.Unlock()
	return at, nil
}

func (probe) TrainableParams(layers []methods.LayerShape, _ methods.Options) int64 {
	var n int64
	for _, l := range layers {
		n += int64(l.Out*l.In + l.Out)
	}
	return n
}

var probes struct {
	sync.Mutex
	last  *probeAttachment
	lastB *probeBAttachment
}

func init() { methods.Register("test-probe", probe{}) }

type probeAttachment struct {
	layers []*nn.Linear
	params []nn.ParamRef
	// calls lists the hooks in the order the trainer called them;
	// stepNorms the gradient norm BeforeStep saw.
	calls     []string
	stepNorms []float64
}

func (at *probeAttachment) Params() []nn.ParamRef { return at.params }
func (at *probeAttachment) Layers() []*nn.Linear  { return at.layers }
func (at *probeAttachment) SetTraining(*nn.RNG)   {}

func (at *probeAttachment) BeforeStep(step, total int) {
	at.calls = append(at.calls, "BeforeStep")
	at.stepNorms = append(at.stepNorms, nn.GradNorm(at.params))
}

func (at *probeAttachment) AfterStep(step, total int) { at.calls = append(at.calls, "AfterStep") }

// normRecorder keeps the train/grad_norm values the trainer reports.
type normRecorder struct {
	recorder
	norms []float64
}

func (r *normRecorder) Step(step int, split, metric string, v float64) {
	if split == "train" && metric == "grad_norm" {
		r.norms = append(r.norms, v)
	}
	r.recorder.Step(step, split, metric, v)
}

// TestHooksSeeClippedGradient checks the trainer contract's order: the
// gradient is clipped before BeforeStep (HF PEFT's LoRA-FA optimiser
// preconditions the clipped gradient), the reported grad_norm is the raw
// norm, and AfterStep follows each BeforeStep.
func TestHooksSeeClippedGradient(t *testing.T) {
	const clip = 1e-3
	cfg := teacherShift("test-probe", nil)
	cfg.GradClip = clip
	cfg.Steps = 10
	rec := &normRecorder{}
	if err := (&train.Trainer{Cache: cache, NoWeights: true}).Run(context.Background(), cfg, t.TempDir(), rec); err != nil {
		t.Fatal(err)
	}
	probes.Lock()
	at := probes.last
	probes.Unlock()
	if len(at.stepNorms) != cfg.Steps {
		t.Fatalf("BeforeStep called %d times, want %d", len(at.stepNorms), cfg.Steps)
	}
	for i, n := range at.stepNorms {
		if n > clip*(1+1e-4) {
			t.Errorf("step %d: BeforeStep saw gradient norm %g, above the clip %g: it ran before clipping", i, n, clip)
		}
	}
	var raw int
	for _, n := range rec.norms {
		if n > 10*clip {
			raw++
		}
	}
	if raw == 0 {
		t.Errorf("reported grad_norm %v never exceeds the clip: it should be the raw norm", rec.norms)
	}
	for i := 0; i+1 < len(at.calls); i += 2 {
		if at.calls[i] != "BeforeStep" || at.calls[i+1] != "AfterStep" {
			t.Fatalf("hook calls %v, want BeforeStep, AfterStep per step", at.calls)
		}
	}
}
