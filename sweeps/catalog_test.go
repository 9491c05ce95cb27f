package sweeps

import (
	"fmt"
	"slices"

	"peftbench/internal/options"
)

// fakeCatalog stands in for the method and task registries: a few methods
// with options and defaults, and two tasks whose layers depend on options.
type fakeCatalog struct{}

type fakeOpt struct {
	def   any
	check func(v any, rank int) (any, string)
}

// numOpt is a float option; like the real methods', it takes a multiple
// of the rank ("2r") through options.PerRank.
func numOpt(def float64, lo, hi float64) fakeOpt {
	return fakeOpt{def, func(v any, rank int) (any, string) {
		var x float64
		var msg string
		if s, ok := v.(string); ok {
			k, ok := options.PerRank(s)
			if !ok || rank == 0 {
				return nil, fmt.Sprintf("%q is not a number or a multiple of the rank", s)
			}
			x = k * float64(rank)
		} else if x, msg = asFloat(v); msg != "" {
			return nil, msg
		}
		if x < lo || x >= hi {
			return nil, fmt.Sprintf("must be in [%v, %v), got %v", lo, hi, x)
		}
		return x, ""
	}}
}

func intOpt(def, lo int64) fakeOpt {
	return fakeOpt{def, func(v any, _ int) (any, string) {
		n, msg := asInt(v)
		if msg != "" {
			return nil, msg
		}
		if n < lo {
			return nil, fmt.Sprintf("must be at least %d, got %d", lo, n)
		}
		return n, ""
	}}
}

func enumOpt(def string, valid ...string) fakeOpt {
	return fakeOpt{def, func(v any, _ int) (any, string) {
		s, ok := v.(string)
		if !ok || !slices.Contains(valid, s) {
			return nil, fmt.Sprintf("want one of %q, got %v", valid, v)
		}
		return s, ""
	}}
}

var fakeMethods = map[string]map[string]fakeOpt{
	"full":      {},
	"lora":      {"alpha": numOpt(8, 0, 1e9), "dropout": numOpt(0, 0, 1), "init": enumOpt("kaiming", "kaiming", "gaussian")},
	"rslora":    {"alpha": numOpt(8, 0, 1e9), "dropout": numOpt(0, 0, 1)},
	"dora":      {"alpha": numOpt(8, 0, 1e9)},
	"lora_plus": {"alpha": numOpt(8, 0, 1e9), "lr_ratio": numOpt(16, 1, 1e9)},
	"vera":      {"d_init": numOpt(0.1, 0, 1e9)},
}

var fakeTasks = map[string]map[string]fakeOpt{
	"mlp":      {"hidden": intOpt(64, 1), "noise": numOpt(0, 0, 1)},
	"tiny-gpt": {"layers": intOpt(2, 1), "d": intOpt(32, 1)},
}

func sortedNames[V any](m map[string]V) []string { return sortedKeys(m) }

func (fakeCatalog) Methods() []string          { return sortedNames(fakeMethods) }
func (fakeCatalog) Tasks() []string            { return sortedNames(fakeTasks) }
func (fakeCatalog) HasRank(method string) bool { return method != "full" }
func (fakeCatalog) MethodOptions(method string) []string {
	return sortedNames(fakeMethods[method])
}
func (fakeCatalog) TaskOptions(task string) []string { return sortedNames(fakeTasks[task]) }

func resolve(spec map[string]fakeOpt, rank int, opts map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range opts {
		o, ok := spec[k]
		if !ok {
			return nil, &OptionError{Key: k, Msg: "unknown option"}
		}
		val, msg := o.check(v, rank)
		if msg != "" {
			return nil, &OptionError{Key: k, Msg: msg}
		}
		out[k] = val
	}
	for k, o := range spec {
		if _, ok := out[k]; !ok {
			out[k] = o.def
		}
	}
	return out, nil
}

func (fakeCatalog) ResolveMethod(method string, rank int, opts map[string]any) (map[string]any, error) {
	spec, ok := fakeMethods[method]
	if !ok {
		return nil, fmt.Errorf("unknown method %q", method)
	}
	if (method == "full") != (rank == 0) {
		return nil, fmt.Errorf("bad rank %d", rank)
	}
	return resolve(spec, rank, opts)
}

// FromRank: the rank itself; the fake methods derive no option from it.
func (fakeCatalog) FromRank(method, key string) bool { return key == "rank" }

func (fakeCatalog) Executors() []string { return []string{"local", "slurm"} }

func (fakeCatalog) ResolveTask(task string, opts map[string]any) (map[string]any, error) {
	spec, ok := fakeTasks[task]
	if !ok {
		return nil, fmt.Errorf("unknown task %q", task)
	}
	return resolve(spec, 0, opts)
}

func (fakeCatalog) Layers(task string, opts map[string]any) ([]Layer, error) {
	switch task {
	case "mlp":
		h := int(opts["hidden"].(int64))
		return []Layer{{Name: "fc1", Out: h, In: 784}, {Name: "fc2", Out: h, In: h}, {Name: "head", Out: 10, In: h}}, nil
	case "tiny-gpt":
		d := int(opts["d"].(int64))
		var ls []Layer
		for i := range int(opts["layers"].(int64)) {
			p := fmt.Sprintf("blocks.%d.", i)
			for _, n := range []string{"q", "k", "v", "o"} {
				ls = append(ls, Layer{Name: p + "attn." + n, Out: d, In: d})
			}
			ls = append(ls, Layer{Name: p + "mlp.up", Out: 4 * d, In: d}, Layer{Name: p + "mlp.down", Out: d, In: 4 * d})
		}
		return ls, nil
	}
	return nil, fmt.Errorf("unknown task %q", task)
}

// CheckMethodLayers follows the real methods' rules in miniature: vera
// takes any rank; every other ranked method needs rank ≤ min(out, in).
func (fakeCatalog) CheckMethodLayers(method string, r int, resolved map[string]any, layers []Layer) error {
	if method == "full" || method == "vera" || r == 0 {
		return nil
	}
	for _, l := range layers {
		if m := min(l.Out, l.In); r > m {
			return &OptionError{Key: "rank", Msg: fmt.Sprintf("%d exceeds min(out, in) = %d of layer %s (%d×%d)", r, m, l.Name, l.Out, l.In)}
		}
	}
	return nil
}
