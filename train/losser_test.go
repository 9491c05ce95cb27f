package train_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"peftbench/lmfolder"
	"peftbench/methods"
	"peftbench/nn"
	"peftbench/tasks"
)

// tripleTask is teacher-shift whose model reports 3× its cross-entropy as
// its Loss (tasks.Losser), so a test can see which loss the trainer uses.
type tripleTask struct{ tasks.Task }

type tripleInst struct{ tasks.Instance }

type tripleModel struct{ tasks.Model }

func (t tripleTask) Info() tasks.Info {
	i := t.Task.Info()
	i.Name = "test-losser"
	return i
}

func (t tripleTask) New(o tasks.Options) (tasks.Instance, error) {
	in, err := t.Task.New(o)
	return tripleInst{in}, err
}

func (in tripleInst) Base(ctx context.Context, c *tasks.Cache) (tasks.Model, error) {
	m, err := in.Instance.Base(ctx, c)
	return tripleModel{m}, err
}

func (m tripleModel) Clone() tasks.Model { return tripleModel{m.Model.Clone()} }

func (m tripleModel) Loss(g *nn.Graph, b tasks.Batch) *nn.Tensor {
	return g.Scale(g.CrossEntropy(m.Logits(g, b), b.Labels), 3)
}

func init() {
	ts, err := tasks.Lookup("teacher-shift")
	if err != nil {
		panic(err)
	}
	tasks.Register("test-losser", tripleTask{ts})
}

// TestTrainUsesLosser: a model with its own Loss (tasks.Losser) trains on
// it: the first reported train loss is 3× the plain task's. Planted bug
// caught: the trainer ignoring Losser (the lm task would then form full
// logits for every training step).
func TestTrainUsesLosser(t *testing.T) {
	plain := teacherShift("lora", map[string]any{"rank": 4})
	plain.Steps = 2
	tripled := plain
	tripled.Task = "test-losser"
	a, _, err := run(t, plain)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := run(t, tripled)
	if err != nil {
		t.Fatal(err)
	}
	la, lb := a.values["train/loss"][0], b.values["train/loss"][0]
	if math.Abs(lb-3*la) > 1e-5*la {
		t.Errorf("first train loss %v with Losser, %v without: want 3×", lb, la)
	}
}

// TestLMTrial runs a LoRA trial on the lm task (a tiny GPT-2 folder) and
// checks its LM summaries: perplexity = exp(target_loss), tokens_per_s.
func TestLMTrial(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if _, _, err := lmfolder.Write(model, lmfolder.Spec{Family: "gpt2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := lmfolder.WriteData(dir, 0); err != nil {
		t.Fatal(err)
	}
	o, err := tasks.ResolveOptions("lm", map[string]any{"model": model, "seq_len": 16,
		"train": filepath.Join(dir, "train.jsonl"), "eval": filepath.Join(dir, "eval.jsonl"), "retain": filepath.Join(dir, "retain.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := teacherShift("lora", map[string]any{"rank": 2})
	cfg.MethodOptions, _ = methods.ResolveOptions("lora", 0, map[string]any{"rank": 2})
	cfg.Task, cfg.TaskOptions, cfg.Steps, cfg.Batch = "lm", o, 4, 4
	cfg.Layers = []string{"transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_fc"}
	rec, _, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := rec.summary
	if got, want := s["perplexity"], math.Exp(s["target_loss"]); math.Abs(got-want) > 1e-9*want {
		t.Errorf("perplexity %v, exp(target_loss) %v", got, want)
	}
	if s["tokens_per_s"] <= 0 || s["forgetting"] <= 0 {
		t.Errorf("tokens_per_s %v, forgetting %v: want > 0", s["tokens_per_s"], s["forgetting"])
	}
}
