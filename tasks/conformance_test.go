package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

// quickTasks pretrain in seconds; the others only without -short.
var quickTasks = map[string]bool{"teacher-shift": true, "safety-guard": true, "lm": true}

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
			in, err := New(name, testOptions[name])
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
			o, _ := ResolveOptions(name, testOptions[name])
			if got, want := shapes(base), task.Layers(o); !equalShapes(got, want) {
				t.Errorf("Layers = %v, model has %v", want, got)
			}
			var norms []NormShape
			for _, n := range base.Norms() {
				norms = append(norms, NormShape{Name: n.Name, Dim: n.Dim(), Bias: n.Bias != nil})
			}
			if want, _ := Norms(name, testOptions[name]); !slices.Equal(norms, want) {
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

// equalShapes compares layer lists, Output aside: a model's linears do not
// say which is its output projection (TestLMLayers checks the lm task's).
func equalShapes(a, b []LayerShape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Output, y.Output = false, false
		if x != y {
			return false
		}
	}
	return true
}

// TestValidationSplit checks every registered task's validation set (and
// each stage's, for continual options): not empty, at most half the
// target's size, scored over the target's classes, fixed for the options
// (the same after a trial draws training batches with its own seed, and
// in a second instance), and with no example of the target or retain
// sets, except where the package documents an overlap: modarith at
// train_frac = 1 trains and tests on every pair, so its validation pairs
// are target pairs there. Validation drawn from a finite fine-tuning pool
// must be rows of that pool (they cannot be held out of it without
// changing the training batches).
func TestValidationSplit(t *testing.T) {
	type tc struct {
		task string
		opts map[string]any
		// inTarget: the validation examples are all target examples (the
		// documented overlap) instead of none.
		inTarget bool
	}
	var cases []tc
	for _, name := range Names() {
		cases = append(cases, tc{task: name, opts: testOptions[name], inTarget: name == "modarith"})
	}
	cases = append(cases,
		tc{task: "modarith", opts: map[string]any{"train_frac": 0.5}},
		tc{task: "teacher-shift", opts: map[string]any{"stages": 3, "eval_size": 256}},
		tc{task: "teacher-shift", opts: map[string]any{"n_train": 500, "eval_size": 256}},
		tc{task: "mnist-permuted", opts: map[string]any{"stages": 2}},
		tc{task: "mnist-split", opts: map[string]any{"protocol": "class-il"}},
	)
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v", c.task, c.opts), func(t *testing.T) {
			if testing.Short() && strings.HasPrefix(c.task, "mnist") && c.opts != nil {
				t.Skip("builds MNIST sets for seconds; run without -short")
			}
			in, err := New(c.task, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			type set struct {
				name               string
				val, target, train []Batch
			}
			draw := func(f func(*nn.RNG, int) Batch) []Batch {
				rng := nn.NewRNG(1, "data")
				return []Batch{f(rng, 64), f(rng, 64)}
			}
			sets := []set{{"", in.Validation(), in.Target(), draw(in.TrainBatch)}}
			if st, ok := in.(Staged); ok {
				for i, s := range st.Stages() {
					if i == 0 && batchesKey(s.Validation) != batchesKey(in.Validation()) {
						t.Errorf("Validation() is not the first stage's")
					}
					sets = append(sets, set{s.Name + ": ", s.Validation, s.Target, draw(s.TrainBatch)})
				}
			}
			retain := examples(in.Retain())
			for _, s := range sets {
				nv, nt := rows(s.val), rows(s.target)
				if nv == 0 || 2*nv > nt {
					t.Errorf("%s%d validation examples for %d target examples, want 1 to half", s.name, nv, nt)
				}
				for _, b := range s.val {
					if !slices.Equal(b.Classes, s.target[0].Classes) {
						t.Errorf("%svalidation scored over classes %v, target over %v", s.name, b.Classes, s.target[0].Classes)
						break
					}
				}
				target := examples(s.target)
				var inT, inR int
				for k := range examples(s.val) {
					if target[k] {
						inT++
					}
					if retain[k] {
						inR++
					}
				}
				if inR > 0 {
					t.Errorf("%s%d of %d validation examples are retain examples", s.name, inR, nv)
				}
				if want := map[bool]int{false: 0, true: nv}[c.inTarget]; inT != want {
					t.Errorf("%s%d of %d validation examples are target examples, want %d", s.name, inT, nv, want)
				}
				if pool := finitePool(in); pool != nil {
					for k := range examples(s.val) {
						if !pool[k] {
							t.Errorf("%sa validation example is not in the finite training pool", s.name)
							break
						}
					}
				} else if n := overlap(examples(s.val), examples(s.train)); n > 0 {
					t.Errorf("%s%d validation examples drawn in the first training batches", s.name, n)
				}
			}
			// Fixed for the options: a trial's draws do not move it.
			want := batchesKey(in.Validation())
			draw(in.TrainBatch)
			again, err := New(c.task, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			rng := nn.NewRNG(7, "data")
			again.TrainBatch(rng, 64)
			if batchesKey(in.Validation()) != want || batchesKey(again.Validation()) != want {
				t.Errorf("validation set changed with training draws or between instances")
			}
			t.Logf("%d validation examples, %d target", rows(in.Validation()), rows(in.Target()))
		})
	}
}

// examples returns the examples of bs by content (a hash of it): an MLP
// row's features, a sequence's ids and labels.
func examples(bs []Batch) map[string]bool {
	m := map[string]bool{}
	for _, b := range bs {
		for i := range b.N {
			var key []byte
			if b.X != nil {
				c := b.X.Cols()
				for _, v := range b.X.Data[i*c : (i+1)*c] {
					key = binary.LittleEndian.AppendUint32(key, math.Float32bits(v))
				}
			} else {
				for _, v := range b.IDs[i*b.Seq : (i+1)*b.Seq] {
					key = binary.AppendVarint(key, int64(v))
				}
				for _, v := range b.Labels[i*b.Seq : (i+1)*b.Seq] {
					key = binary.AppendVarint(key, int64(v))
				}
			}
			sum := sha256.Sum256(key)
			m[string(sum[:16])] = true
		}
	}
	return m
}

func overlap(a, b map[string]bool) int {
	n := 0
	for k := range a {
		if b[k] {
			n++
		}
	}
	return n
}

func rows(bs []Batch) int {
	n := 0
	for _, b := range bs {
		n += b.N
	}
	return n
}

// batchesKey is the content of bs as a string, to compare sets.
func batchesKey(bs []Batch) string {
	h := sha256.New()
	writeBatches(h, "", bs)
	return string(h.Sum(nil))
}

// finitePool returns the examples of the finite training pool of an
// instance whose training batches sample one in full (nil otherwise):
// every stage's, for a continual task.
func finitePool(in Instance) map[string]bool {
	switch in := in.(type) {
	case *modarithInst:
		return examples([]Batch{in.batch(in.mulTr, in.p+1)})
	case *mnistInst:
		return mnistPool(in)
	case *stagedMNIST:
		return mnistPool(in.mnistInst)
	}
	return nil
}

func mnistPool(in *mnistInst) map[string]bool {
	m := map[string]bool{}
	for _, s := range in.train {
		for k := range examples(s.eval()) {
			m[k] = true
		}
	}
	return m
}
