package train

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"peftbench/nn"
	"peftbench/safetensors"
	"peftbench/tasks"
)

// AdapterFile is the artifact holding the trial's trained tensors as HF
// PEFT saves an adapter (adapter_model.safetensors): every trainable
// tensor of the attached method (Attachment.Params, the last stage's for a
// continual task), float32, named "base_model.model.<name>"
// ("base_model.model.fc1.lora_A.weight"). Frozen buffers (VeRA's shared
// projections, a residual method's initial factors) are not in it. For
// full fine-tuning it holds the trained weights and biases.
const AdapterFile = safetensors.AdapterWeightsFile

// EfficiencySummaries are the summaries Run reports on a trial's cost:
//
//	examples_per_s         training examples per second of training-step time
//	tokens_per_s           text tasks only: training tokens (N·Seq) per second of it
//	ms_per_step            mean wall milliseconds of one optimiser step
//	                       (batch drawn, forward, backward, hooks, update;
//	                       evaluations excluded)
//	optimizer_state_bytes  the optimiser's state at the end, from nn
//	                       (nn.StateSizer): AdamW 2·4 bytes per trainable
//	                       element, SGD with momentum 4, plain SGD 0
//	adapter_bytes          size of AdapterFile, from os.Stat
//	forward_ms_unmerged    median wall ms of forwardRepeats forward passes
//	                       over the first target batch (the last stage's),
//	                       adapter attached, after one untimed pass
//	forward_ms_merged      the same after merging the adapter into the
//	                       weights, biases and norms (the merge between
//	                       continual stages: Adapter.Merged,
//	                       methods.MergedBias, nn.Norm.Merge)
//	merge_error            max |merged − unmerged logits| over that batch
//	peak_mem_bytes         this trial's peak of live tensor bytes (below)
//	train_seconds          wall time of the trial after its base model is
//	                       ready (waiting for, loading or pretraining it
//	                       excluded)
//
// peak_mem_bytes is the high-water mark of an nn.Meter that only this
// trial charges, the analogue of torch.cuda.max_memory_allocated: the
// buffers reachable from the trial's base model, its tuned clone and the
// attached method (weights, gradients, adapter tensors and frozen
// buffers: nn.ReachableBytes), the target, retain, validation and stage
// evaluation sets, the current training batch, the optimiser's state, and
// the arenas of the trial's graphs (activations and their gradients on the tape,
// which an arena keeps across steps; the gradient estimate's graph of a
// data-driven init while it runs). Transient buffers outside them
// (kernels' packing, the intruder mitigation's float64 copies, the Go
// runtime's own) are not counted. It depends only on the trial's config:
// it is deterministic and the same whatever else runs in the process.
//
// The timing summaries (IsTiming) vary from run to run and with the
// machine's load; every other one is deterministic. Measuring draws no
// random number, so the training metrics are those of a run without it,
// bit for bit. A trial that fails or diverges reports none of them.
var EfficiencySummaries = []string{
	"examples_per_s", "tokens_per_s", "ms_per_step", "optimizer_state_bytes", "adapter_bytes",
	"forward_ms_unmerged", "forward_ms_merged", "merge_error", "peak_mem_bytes", "train_seconds",
}

// timingSummaries are the summaries measured in wall time.
var timingSummaries = map[string]bool{
	"examples_per_s": true, "tokens_per_s": true, "ms_per_step": true,
	"forward_ms_unmerged": true, "forward_ms_merged": true, "train_seconds": true,
}

// IsTiming reports whether the summary name is measured in wall time, so
// it varies between runs of one config (determinism checks skip it).
func IsTiming(name string) bool { return timingSummaries[name] }

// forwardRepeats is how many timed forward passes forward_ms_* take the
// median of (after one untimed pass that sizes the arena).
const forwardRepeats = 5

// efficiency measures one trial.
type efficiency struct {
	meter nn.Meter
	start time.Time // the base model ready
	// fixed are the roots charged throughout: the base model and the
	// evaluation sets.
	fixed []any
	// held is what sync last charged for the trial's models, attachment
	// and evaluation sets.
	held     int64
	stepTime time.Duration
	steps    int
	examples int64
	tokens   int64
	// estimate is the graph of a running gradient estimate (nil after).
	estimate *nn.Graph
	// batchShape and batchBytes are the last training batch's shape and
	// bytes: a trial's batches have one shape, so its bytes are walked
	// once, not inside every timed step.
	batchShape [5]int
	batchBytes int64
}

// newEfficiency starts measuring a trial whose base model is ready.
func newEfficiency(base tasks.Model, inst tasks.Instance) *efficiency {
	sets := [][]tasks.Batch{inst.Target(), inst.Retain(), inst.Validation()}
	if st, ok := inst.(tasks.Staged); ok {
		for _, s := range st.Stages() {
			sets = append(sets, s.Target, s.Validation)
		}
	}
	e := &efficiency{start: time.Now(), fixed: []any{base, sets}}
	e.sync()
	return e
}

// sync charges the meter with what the trial's tensors hold now: those
// reachable from roots (the tuned model and the attachment) and the fixed
// roots, replacing what it charged before. The trainer calls it whenever
// they change: after an attach or a merge.
func (e *efficiency) sync(roots ...any) {
	if e == nil {
		return
	}
	b := nn.ReachableBytes(append(roots, e.fixed...)...)
	e.meter.Add(b - e.held)
	e.held = b
}

// Meter is the trial's meter (nil when not measuring).
func (e *efficiency) Meter() *nn.Meter {
	if e == nil {
		return nil
	}
	return &e.meter
}

// estimating charges a gradient estimate's graph and the base weights'
// gradients it allocated; estimated frees them.
func (e *efficiency) estimating(g *nn.Graph, roots ...any) {
	if e == nil || e.estimate == g {
		return
	}
	e.estimate = g
	g.Meter = &e.meter
	e.sync(roots...)
}

func (e *efficiency) estimated(roots ...any) {
	if e == nil || e.estimate == nil {
		return
	}
	e.estimate.Release()
	e.estimate = nil
	e.sync(roots...)
}

// batch charges a training batch's bytes for the duration of its step
// and returns them for stepDone.
func (e *efficiency) batch(b tasks.Batch) int64 {
	shape := [5]int{b.N, b.Seq, len(b.IDs), len(b.Labels), len(b.Classes)}
	if shape != e.batchShape || e.batchBytes == 0 {
		e.batchShape, e.batchBytes = shape, nn.ReachableBytes(b)
	}
	e.meter.Add(e.batchBytes)
	return e.batchBytes
}

// stepDone ends an optimiser step begun at t0 on batch b (of held bytes).
func (e *efficiency) stepDone(t0 time.Time, b tasks.Batch, held int64) {
	e.stepTime += time.Since(t0)
	e.steps++
	e.examples += int64(b.N)
	if b.IDs != nil {
		e.tokens += int64(len(b.IDs))
	}
	e.meter.Add(-held)
}

// dropOptimizer uncharges the state of an optimiser the trial replaces.
func (e *efficiency) dropOptimizer(o nn.Optimizer) {
	if s, ok := o.(nn.StateSizer); ok && e != nil {
		e.meter.Add(-s.StateBytes())
	}
}

// efficiency reports the trial's efficiency summaries. It must run last:
// it merges the adapter into the model.
func (r *run) efficiency(dir string) error {
	e := r.eff
	if e.steps > 0 {
		sec := e.stepTime.Seconds()
		r.rep.Summary("examples_per_s", float64(e.examples)/sec)
		if e.tokens > 0 {
			r.rep.Summary("tokens_per_s", float64(e.tokens)/sec)
		}
		r.rep.Summary("ms_per_step", 1e3*sec/float64(e.steps))
	}
	var state int64
	if s, ok := r.opt.(nn.StateSizer); ok {
		state = s.StateBytes()
	}
	r.rep.Summary("optimizer_state_bytes", float64(state))

	size, err := r.saveAdapter(dir)
	if err != nil {
		return err
	}
	r.rep.Summary("adapter_bytes", float64(size))

	b := r.forwardBatch()
	unmerged, msU := r.timeForward(b)
	r.mergeAdapter()
	e.sync(r.model, r.att)
	merged, msM := r.timeForward(b)
	var gap float64
	for i, v := range merged {
		gap = max(gap, math.Abs(float64(v)-float64(unmerged[i])))
	}
	r.rep.Summary("forward_ms_unmerged", msU)
	r.rep.Summary("forward_ms_merged", msM)
	r.rep.Summary("merge_error", gap)
	r.rep.Summary("peak_mem_bytes", float64(e.meter.Peak()))
	r.rep.Summary("train_seconds", time.Since(e.start).Seconds())
	return nil
}

// forwardBatch is the fixed batch of the forward timings: the first batch
// of the target set (the last stage's for a continual task).
func (r *run) forwardBatch() tasks.Batch {
	t := r.inst.Target()
	if st, ok := r.inst.(tasks.Staged); ok {
		stages := st.Stages()
		t = stages[len(stages)-1].Target
	}
	return t[0]
}

// timeForward runs the model's forward pass over b once untimed and
// forwardRepeats times timed on the evaluation graph, and returns a copy
// of its logits and the median time in milliseconds.
func (r *run) timeForward(b tasks.Batch) ([]float32, float64) {
	g := r.eval
	g.Reset()
	logits := slices.Clone(r.model.Logits(g, b).Data)
	ms := make([]float64, forwardRepeats)
	for i := range ms {
		g.Reset()
		t0 := time.Now()
		r.model.Logits(g, b)
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	g.Reset()
	sort.Float64s(ms)
	return logits, ms[len(ms)/2]
}

// saveAdapter writes AdapterFile into dir and returns its size in bytes.
func (r *run) saveAdapter(dir string) (int64, error) {
	ps := r.att.Params()
	ts := make([]safetensors.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = safetensors.Tensor{Name: "base_model.model." + p.Name, Shape: slices.Clone(p.T.Shape), Data: p.T.Data}
	}
	path := filepath.Join(dir, AdapterFile)
	if err := safetensors.WriteFile(path, ts, map[string]string{
		"format": "pt", "method": r.cfg.Method, "task": r.cfg.Task,
	}); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	r.rep.Artifact("adapter", AdapterFile)
	return fi.Size(), nil
}
