package export

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"peftbench/lm"
	"peftbench/nn"
	"peftbench/safetensors"
	"peftbench/tasks"
	"peftbench/train"
)

// An lm trial (task lm: a Hugging Face checkpoint folder) is exported for
// trainers/pytorch/train_lm.py, which runs it through transformers and HF
// PEFT. The trainer never tokenises nor draws: everything it consumes
// is what the builtin trainer consumes.
//
//	export.json        arch {kind "hf-causal-lm", model (the folder, absolute),
//	                   model_type, seq, vocab}; layers (every linear layer of
//	                   the checkpoint, its own module names, targeted ones
//	                   marked: PEFT's target_modules); method and its resolved
//	                   options; params (the builtin's trainable tensors, in
//	                   its optimiser's order); train (optimiser, lr per step)
//	init.safetensors   the builtin method's trainable tensors at step 0
//	                   under its names (<layer>.lora_A.weight, …), so that a
//	                   trainer that can load them starts where the builtin
//	                   does (absent with DataOnly)
//	data.safetensors   train.ids, train.labels (steps×batch×seq): the rows
//	                   the builtin trainer draws from the seed's data stream,
//	                   in order; target.*, retain.*, val.* (rows×seq). IDs
//	                   and labels are F32 holding integers; a label is the
//	                   token the position predicts (already shifted, HF's
//	                   -100 for none)
//
// No base.safetensors: the weights are the checkpoint folder's.

// LMKind is Arch.Kind of an lm export.
const LMKind = "hf-causal-lm"

// LMTask is the task exported in the hf-causal-lm form.
const LMTask = "lm"

// modelDir returns the lm trial's checkpoint folder, $VARS expanded as
// the task expands them, made absolute.
func modelDir(cfg train.Config) (string, error) {
	v, _ := cfg.TaskOptions["model"].(string)
	if v == "" {
		return "", fmt.Errorf("export: task %s: no model folder in the task options", cfg.Task)
	}
	var missing string
	p := os.Expand(v, func(name string) string {
		s, ok := os.LookupEnv(name)
		if !ok {
			missing = name
		}
		return s
	})
	if missing != "" {
		return "", fmt.Errorf("export: task %s: model %q: $%s is not set", cfg.Task, v, missing)
	}
	return filepath.Abs(p)
}

// writeLM is Write for the lm task.
func writeLM(ctx context.Context, cfg train.Config, inst tasks.Instance, dir string, opt Options) (*Manifest, error) {
	if _, ok := inst.(tasks.Staged); ok {
		return nil, fmt.Errorf("export: task %s: continual tasks are not exported", cfg.Task)
	}
	folder, err := modelDir(cfg)
	if err != nil {
		return nil, err
	}
	lc, err := lm.ReadConfig(folder)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	base, err := inst.Base(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("export: base model of %s: %w", cfg.Task, err)
	}
	setup, err := train.Prepare(cfg, inst, base, !opt.DataOnly)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	seq := inst.Target()[0].Seq
	m := &Manifest{
		Format: Format, Task: cfg.Task, TaskOptions: cfg.TaskOptions,
		Method: cfg.Method, MethodOptions: cfg.MethodOptions, Seed: cfg.Seed,
		DataOnly: opt.DataOnly,
		Arch:     Arch{Kind: LMKind, Model: folder, Type: lc.ModelType, Seq: seq, Vocab: lc.Vocab},
		Features: seq, Classes: lc.Vocab,
	}
	if setup.Options != nil {
		// The resolved options (defaults filled in), as the builtin uses them.
		m.MethodOptions = map[string]any(setup.Options)
	}
	for _, l := range setup.Model.Linears() {
		m.Layers = append(m.Layers, Layer{Name: l.Name, Out: l.Out, In: l.In, Bias: l.Bias != nil, Targeted: slices.Contains(setup.Layers, l)})
	}
	var init []safetensors.Tensor
	if att := setup.Attachment; att != nil {
		m.TotalParams = int64(nn.TotalParams(setup.Model))
		for _, p := range att.Params() {
			m.Params = append(m.Params, Param{Name: p.Name, Shape: slices.Clone(p.T.Shape), LRMul: float64(lrMul(p)), Decay: p.Decay})
			m.TrainableParams += int64(p.T.Size())
			init = append(init, safetensors.Tensor{Name: p.Name, Shape: slices.Clone(p.T.Shape), Data: slices.Clone(p.T.Data)})
		}
	}
	m.Train = trainSettings(cfg)
	data, err := lmData(cfg, inst, setup.Data, m)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	meta := map[string]string{"task": cfg.Task, "method": cfg.Method, "format": fmt.Sprint(Format)}
	if err := safetensors.WriteFile(filepath.Join(dir, DataFile), data, meta); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if !opt.DataOnly {
		if err := safetensors.WriteFile(filepath.Join(dir, InitFile), init, meta); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	buf, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(buf, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return m, nil
}

// lmData draws the training rows from rng (the trial's StreamData stream,
// as the builtin trainer draws them: one TrainBatch per step) and stacks
// the evaluation sets' rows.
func lmData(cfg train.Config, inst tasks.Instance, rng *nn.RNG, m *Manifest) ([]safetensors.Tensor, error) {
	seq := m.Arch.Seq
	ids := make([]float32, 0, cfg.Steps*cfg.Batch*seq)
	labels := make([]float32, 0, cfg.Steps*cfg.Batch*seq)
	for range cfg.Steps {
		b := inst.TrainBatch(rng, cfg.Batch)
		if b.N != cfg.Batch || b.Seq != seq || len(b.IDs) != cfg.Batch*seq || len(b.Labels) != len(b.IDs) {
			return nil, fmt.Errorf("export: %s: a training batch is not %d rows of %d tokens", cfg.Task, cfg.Batch, seq)
		}
		ids, labels = appendTokens(ids, b.IDs), appendTokens(labels, b.Labels)
	}
	ts := []safetensors.Tensor{
		{Name: "train.ids", Shape: []int{cfg.Steps, cfg.Batch, seq}, Data: ids},
		{Name: "train.labels", Shape: []int{cfg.Steps, cfg.Batch, seq}, Data: labels},
	}
	for _, set := range []struct {
		name string
		bs   []tasks.Batch
		rows *int
	}{
		{"target", inst.Target(), &m.TargetRows},
		{"retain", inst.Retain(), &m.RetainRows},
		{"val", inst.Validation(), &m.ValRows},
	} {
		var si, sl []float32
		n := 0
		for _, b := range set.bs {
			if b.Seq != seq || len(b.IDs) != b.N*seq || len(b.Labels) != len(b.IDs) || b.Classes != nil {
				return nil, fmt.Errorf("export: %s: %s set is not rows of %d tokens", cfg.Task, set.name, seq)
			}
			si, sl = appendTokens(si, b.IDs), appendTokens(sl, b.Labels)
			n += b.N
		}
		*set.rows = n
		ts = append(ts,
			safetensors.Tensor{Name: set.name + ".ids", Shape: []int{n, seq}, Data: si},
			safetensors.Tensor{Name: set.name + ".labels", Shape: []int{n, seq}, Data: sl})
	}
	return ts, nil
}

// appendTokens appends token IDs or labels (lm.IgnoreIndex included) as
// float32, exact below 2²⁴.
func appendTokens(dst []float32, v []int) []float32 {
	for _, x := range v {
		if x >= 1<<24 || x < lm.IgnoreIndex {
			panic(fmt.Sprintf("export: token %d does not fit float32 exactly", x))
		}
		dst = append(dst, float32(x))
	}
	return dst
}
