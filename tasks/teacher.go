package tasks

import (
	"context"
	"fmt"
	"math"
	"slices"

	"peftbench/nn"
)

// teacherShift is the synthetic ground-truth task: a teacher network labels
// Gaussian inputs; the base student is pretrained on its labels, then
// fine-tuned on the labels of the same teacher with every layer perturbed
// by a rank-k matrix of relative Frobenius size perturb_scale. The
// perturbation's rank is the rank a method needs.
type teacherShift struct{}

const teacherRecipe = 1

func init() { Register("teacher-shift", teacherShift{}) }

func (teacherShift) Info() Info {
	opts := []Option{
		intOpt("dim", 16, 2, 1024, true, "input features"),
		intOpt("hidden", 64, 2, 4096, true, "width of the two hidden layers of teacher and student"),
		intOpt("classes", 5, 2, 256, true, "output classes"),
		intOpt("pretrain_steps", 800, 1, 1000000, true, "pretraining steps of the student (batch 256, fresh inputs each step)"),
		intOpt("perturb_rank", 4, 1, 1024, false, "rank k of the perturbation added to each teacher layer for fine-tuning (at most the layer's min(out, in))"),
		floatOpt("perturb_scale", 0.5, 0, 100, false, "‖ΔW‖_F / ‖W‖_F of each layer's perturbation"),
		intOpt("n_train", 0, 0, 10000000, false, "size of the fixed fine-tuning set; 0 draws fresh inputs for every batch"),
		intOpt("eval_size", 4096, 64, 1000000, false, "examples in each held-out evaluation set"),
	}
	opts = append(opts, stageOptions()...)
	return Info{
		Name: "teacher-shift",
		Description: "synthetic: a student MLP pretrained on a random teacher's labels is fine-tuned on the teacher plus a rank-k perturbation " +
			"of every layer (ground truth for the rank a method needs); stages > 1 chains independent perturbations",
		Architecture: "MLP dim-hidden-hidden-classes (ReLU), teacher of the same shape",
		Metrics:      GenericMetrics,
		Options:      append(opts, baseSeedOption),
		BaseAccuracy: 0.85,
		Recipe:       teacherRecipe,
	}
}

func teacherSizes(o Options) []int {
	return []int{o.Int("dim"), o.Int("hidden"), o.Int("hidden"), o.Int("classes")}
}

func (teacherShift) Layers(o Options) []LayerShape { return mlpLayers(teacherSizes(o)) }

type teacherInst struct {
	o       Options
	sizes   []int
	seed    uint64
	teacher teacher
	shifted []teacher // one per stage
	pools   []Batch   // fixed fine-tuning sets (n_train > 0)
	retain  []Batch
	targets [][]Batch
	vals    [][]Batch // validation set of each stage
}

func (t teacherShift) New(o Options) (Instance, error) {
	in := &teacherInst{o: o, sizes: teacherSizes(o), seed: uint64(o.Int("base_seed"))}
	in.teacher = newTeacher(nn.NewMLP(in.sizes, nn.NewRNG(in.seed, "teacher")), nn.NewRNG(in.seed, "teacher-balance"), true)
	prng := nn.NewRNG(in.seed, "perturbation")
	dim, n := o.Int("dim"), o.Int("eval_size")
	for s := range o.Int("stages") {
		srng := prng.Child(fmt.Sprintf("stage-%d", s))
		mlp, err := perturb(in.teacher.MLP, o.Int("perturb_rank"), float32(o.Float("perturb_scale")), srng)
		if err != nil {
			return nil, err
		}
		sh := newTeacher(mlp, srng.Child("balance"), false)
		in.shifted = append(in.shifted, sh)
		var pool Batch
		if nt := o.Int("n_train"); nt > 0 {
			pool = sh.sample(srng.Child("train"), nt, dim)
		}
		in.pools = append(in.pools, pool)
		in.targets = append(in.targets, sh.evalSet(srng.Child("target"), n, dim))
		// A root stream of its own, so that no other set's draws move.
		vrng := nn.NewRNG(in.seed, fmt.Sprintf("validation/stage-%d", s))
		in.vals = append(in.vals, sh.evalSet(vrng, validationSize(n), dim))
	}
	in.retain = in.teacher.evalSet(nn.NewRNG(in.seed, "retain"), n, dim)
	if o.Int("stages") > 1 {
		return &stagedTeacher{in}, nil
	}
	return in, nil
}

func (in *teacherInst) Base(ctx context.Context, c *Cache) (Model, error) {
	spec := baseSpec{Task: "teacher-shift", Recipe: teacherRecipe, Options: baseOptions(teacherShift{}.Info(), in.o)}
	m, _, err := c.base(ctx, spec,
		func() Model { return newMLPModel(in.sizes, nn.NewRNG(in.seed, "pretrain-init")) },
		func(ctx context.Context, m Model) (map[string]float64, error) {
			r := recipe{Steps: in.o.Int("pretrain_steps"), Batch: 256, LR: 1e-2, Warmup: 50, WD: 0}
			dim := in.sizes[0]
			err := pretrain(ctx, m, r, in.seed, func(rng *nn.RNG, size int) Batch {
				return in.teacher.sample(rng, size, dim)
			})
			if err != nil {
				return nil, err
			}
			_, acc := Evaluate(nil, m, in.retain)
			return map[string]float64{"retain_accuracy": acc}, nil
		})
	return m, err
}

func (in *teacherInst) stageBatch(s int, rng *nn.RNG, size int) Batch {
	dim := in.sizes[0]
	if pool := in.pools[s]; pool.N > 0 {
		return pick(pool, rng, size)
	}
	return in.shifted[s].sample(rng, size, dim)
}

// pick draws size rows of an MLP data set uniformly with replacement.
func pick(pool Batch, rng *nn.RNG, size int) Batch {
	dim := pool.X.Cols()
	x := make([]float32, size*dim)
	labels := make([]int, size)
	for i := range size {
		j := rng.Intn(pool.N)
		copy(x[i*dim:(i+1)*dim], pool.X.Data[j*dim:(j+1)*dim])
		labels[i] = pool.Labels[j]
	}
	return Batch{X: nn.FromData(x, size, dim), N: size, Labels: labels}
}

func (in *teacherInst) TrainBatch(rng *nn.RNG, size int) Batch { return in.stageBatch(0, rng, size) }
func (in *teacherInst) Target() []Batch                        { return in.targets[0] }
func (in *teacherInst) Retain() []Batch                        { return in.retain }
func (in *teacherInst) Validation() []Batch                    { return in.vals[0] }

type stagedTeacher struct{ *teacherInst }

func (in *stagedTeacher) Merge() bool { return in.o.Bool("merge") }

func (in *stagedTeacher) Stages() []Stage {
	st := make([]Stage, len(in.shifted))
	for s := range st {
		st[s] = Stage{
			Name:       fmt.Sprintf("T%d", s+1),
			TrainBatch: func(rng *nn.RNG, size int) Batch { return in.stageBatch(s, rng, size) },
			Target:     in.targets[s],
			Validation: in.vals[s],
		}
	}
	return st
}

// newTeacher wraps t as a teacher. With balance, the head's bias first
// cancels the mean logit of each class on N(0, I), so that classes are
// roughly balanced. The margin is the 40th percentile of the top-two
// logit margins: 60% of inputs are kept.
func newTeacher(t *nn.MLP, rng *nn.RNG, balance bool) teacher {
	dim, n := t.Layers[0].In, 4096
	x := gaussian(rng, n*dim)
	g := &nn.Graph{NoGrad: true}
	if balance {
		lg := t.Forward(g, nn.FromData(x, n, dim))
		head := t.Layers[len(t.Layers)-1]
		c := lg.Cols()
		for j := range c {
			var s float64
			for i := range n {
				s += float64(lg.Data[i*c+j])
			}
			head.Bias.Data[j] -= float32(s / float64(n))
		}
	}
	lg := t.Forward(g, nn.FromData(x, n, dim))
	c := lg.Cols()
	margins := make([]float32, n)
	for i := range n {
		row := lg.Data[i*c : (i+1)*c]
		_, a := logSumExp(row)
		second := float32(math.Inf(-1))
		for j, v := range row {
			if j != a && v > second {
				second = v
			}
		}
		margins[i] = row[a] - second
	}
	slices.Sort(margins)
	return teacher{MLP: t, Margin: margins[n*2/5]}
}

// perturb returns a copy of t with W ← W + ΔW on every layer, ΔW = U·Vᵀ of
// rank min(k, out, in) (U, V with orthonormal columns, equal singular
// values) scaled so that ‖ΔW‖_F = scale·‖W‖_F. Capping at the layer's
// shape lets a high-rank shift of the hidden layers leave a narrow head
// perturbed at full rank instead of failing.
func perturb(t *nn.MLP, k int, scale float32, rng *nn.RNG) (*nn.MLP, error) {
	c := &nn.MLP{Act: t.Act}
	for _, l := range t.Layers {
		k := min(k, l.Out, l.In)
		nl := &nn.Linear{Name: l.Name, In: l.In, Out: l.Out, Weight: l.Weight.Clone(), Bias: l.Bias.Clone()}
		u := orthonormal(rng, l.Out, k)
		v := orthonormal(rng, l.In, k)
		var wn float64
		for _, w := range l.Weight.Data {
			wn += float64(w) * float64(w)
		}
		s := float64(scale) * math.Sqrt(wn/float64(k)) // k unit singular values → ‖UVᵀ‖_F = √k
		for i := range l.Out {
			for j := range l.In {
				var d float64
				for r := range k {
					d += float64(u[i*k+r]) * float64(v[j*k+r])
				}
				nl.Weight.Data[i*l.In+j] += float32(s * d)
			}
		}
		c.Layers = append(c.Layers, nl)
	}
	return c, nil
}

// orthonormal returns an n×k row-major matrix with orthonormal columns
// (Gram–Schmidt on Gaussian columns, in float64).
func orthonormal(rng *nn.RNG, n, k int) []float32 {
	cols := make([][]float64, k)
	for r := range k {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(rng.Norm())
		}
		for pass := 0; pass < 2; pass++ {
			for _, q := range cols[:r] {
				var d float64
				for i := range v {
					d += v[i] * q[i]
				}
				for i := range v {
					v[i] -= d * q[i]
				}
			}
		}
		var nrm float64
		for _, x := range v {
			nrm += x * x
		}
		nrm = math.Sqrt(nrm)
		for i := range v {
			v[i] /= nrm
		}
		cols[r] = v
	}
	out := make([]float32, n*k)
	for i := range n {
		for r := range k {
			out[i*k+r] = float32(cols[r][i])
		}
	}
	return out
}

func gaussian(rng *nn.RNG, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Norm()
	}
	return x
}

// teacher labels inputs with the argmax of an MLP, keeping only inputs
// whose top-two logit margin exceeds Margin (rejection sampling), so that
// labels are a deterministic function with some room around its
// decision boundaries and a student can fit them closely.
type teacher struct {
	*nn.MLP
	Margin float32
}

// label returns the labels of the rows of x and whether each is kept.
func (t teacher) label(x []float32, dim int) ([]int, []bool) {
	n := len(x) / dim
	lg := t.Forward(&nn.Graph{NoGrad: true}, nn.FromData(x, n, dim))
	c := lg.Cols()
	labels := make([]int, n)
	keep := make([]bool, n)
	for i := range labels {
		row := lg.Data[i*c : (i+1)*c]
		_, a := logSumExp(row)
		second := float32(math.Inf(-1))
		for j, v := range row {
			if j != a && v > second {
				second = v
			}
		}
		labels[i], keep[i] = a, row[a]-second >= t.Margin
	}
	return labels, keep
}

// sample draws size inputs N(0, I) that t keeps, with their labels.
func (t teacher) sample(rng *nn.RNG, size, dim int) Batch {
	x := make([]float32, 0, size*dim)
	labels := make([]int, 0, size)
	for len(labels) < size {
		cand := gaussian(rng, size*dim)
		lab, keep := t.label(cand, dim)
		for i := range lab {
			if keep[i] && len(labels) < size {
				x = append(x, cand[i*dim:(i+1)*dim]...)
				labels = append(labels, lab[i])
			}
		}
	}
	return Batch{X: nn.FromData(x, size, dim), N: size, Labels: labels}
}

// evalSet returns n held-out examples of t in batches of 1024.
func (t teacher) evalSet(rng *nn.RNG, n, dim int) []Batch {
	b := t.sample(rng, n, dim)
	return chunks(n, 1024, func(lo, hi int) Batch {
		return Batch{X: nn.FromData(b.X.Data[lo*dim:hi*dim], hi-lo, dim), N: hi - lo, Labels: b.Labels[lo:hi]}
	})
}
