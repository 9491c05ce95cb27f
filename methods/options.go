package methods

import (
	"fmt"
	"maps"
	"slices"

	"peftbench/internal/options"
	"peftbench/nn"
)

// Options are a method's resolved options (see internal/options): every
// declared option present, with its kind's Go type.
type Options = options.Options

// OptionError reports a bad option; Key names it, so that a sweep file
// error can point at the line that set it.
type OptionError = options.OptionError

// optionError is an *OptionError of method.
func optionError(method, key, msg string) *OptionError {
	return &OptionError{Registry: "methods", Name: method, Key: key, Msg: msg}
}

// ResolveOptions validates opts for a method (keys, types, ranges, choices)
// and returns them with defaults filled in. rank > 0 sets the rank option
// (it must then agree with opts["rank"] if that is given); rank 0 keeps
// opts' rank or the method's default. Methods without a rank accept only
// rank 0. A float option (alpha) may be given as a multiple of the rank:
// "2r", "0.5r", "2*r", "r" (options.PerRank). Resolving resolved options
// returns them unchanged.
func ResolveOptions(method string, rank int, opts map[string]any) (Options, error) {
	m, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	info := m.Info()
	if err := options.Unknown("methods", method, info.Options, opts); err != nil {
		return nil, err
	}
	if rank < 0 {
		return nil, optionError(method, "rank", fmt.Sprintf("%d, want > 0", rank))
	}
	if !info.HasRank && rank != 0 {
		return nil, optionError(method, "rank", fmt.Sprintf("%s has no rank axis, have rank %d; leave the rank axis out for it", method, rank))
	}
	key := info.RankOptionName()
	i := slices.IndexFunc(info.Options, func(op Option) bool { return op.Name == key })
	if i >= 0 && rank > 0 {
		// the rank axis sets the rank option; one in opts must agree.
		if _, given := opts[key]; given {
			v, err := options.Value(info.Options[i], opts, 0)
			if err != nil {
				return nil, optionError(method, key, err.Error())
			}
			if r := v.(int); r != rank {
				return nil, optionError(method, key, fmt.Sprintf("options say %d but the rank axis says %d", r, rank))
			}
		}
		opts = maps.Clone(opts)
		if opts == nil {
			opts = map[string]any{}
		}
		opts[key] = rank
	}
	return options.Resolve("methods", method, info.Options, opts)
}

// layerChecker is implemented by methods whose layer constraints differ
// from "rank ≤ min(out, in)".
type layerChecker interface {
	CheckLayers(o Options, layers []LayerShape) error
}

// CheckLayers checks resolved options against the shapes of the targeted
// layers, at sweep-load time: by default a rank above min(out, in) of any
// layer is an error.
func CheckLayers(method string, o Options, layers []LayerShape) error {
	m, err := Lookup(method)
	if err != nil {
		return err
	}
	if len(layers) == 0 {
		return fmt.Errorf("methods: %s: no targeted layers", method)
	}
	if c, ok := m.(layerChecker); ok {
		return c.CheckLayers(o, layers)
	}
	info := m.Info()
	if !info.HasRank || info.RankAboveMin {
		return nil
	}
	return checkRankFits(method, "rank", o.Int("rank"), layers)
}

func checkRankFits(method, key string, r int, layers []LayerShape) error {
	for _, l := range layers {
		if r > min(l.Out, l.In) {
			return optionError(method, key, fmt.Sprintf("%d exceeds min(out, in) = %d of layer %s (%d×%d)", r, min(l.Out, l.In), l.Name, l.Out, l.In))
		}
	}
	return nil
}

// Attach resolves opts for method, checks them against layers and attaches
// the method to every layer. It is the one call a trainer needs; a trainer
// that holds resolved options calls AttachResolved.
func Attach(method string, layers []*nn.Linear, opts map[string]any, rng *nn.RNG) (Attachment, error) {
	if _, err := Lookup(method); err != nil {
		return nil, err
	}
	o, err := ResolveOptions(method, 0, opts)
	if err != nil {
		return nil, err
	}
	return AttachResolved(method, layers, o, rng)
}

// AttachResolved is Attach for options that ResolveOptions returned: it
// checks them against layers and attaches the method, without resolving
// them again.
func AttachResolved(method string, layers []*nn.Linear, o Options, rng *nn.RNG) (Attachment, error) {
	m, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	if err := CheckLayers(method, o, Shapes(layers)); err != nil {
		return nil, err
	}
	for _, l := range layers {
		if l.Adapter != nil {
			return nil, fmt.Errorf("methods: %s: layer %s already has an adapter", method, l.Name)
		}
	}
	return m.Attach(layers, o, rng)
}

// TrainableParams returns method's formula count for layers.
func TrainableParams(method string, layers []LayerShape, opts map[string]any) (int64, error) {
	if _, err := Lookup(method); err != nil {
		return 0, err
	}
	o, err := ResolveOptions(method, 0, opts)
	if err != nil {
		return 0, err
	}
	return TrainableParamsResolved(method, layers, o)
}

// TrainableParamsResolved is TrainableParams for options that
// ResolveOptions returned.
func TrainableParamsResolved(method string, layers []LayerShape, o Options) (int64, error) {
	m, err := Lookup(method)
	if err != nil {
		return 0, err
	}
	return m.TrainableParams(layers, o), nil
}

// Option constructors keep the method files short.

func fptr(v float64) *float64 { return &v }

func intOpt(name string, def, lo int, doc string) Option {
	return Option{Name: name, Kind: "int", Default: def, Min: fptr(float64(lo)), Doc: doc}
}

func floatOpt(name string, def float64, lo, hi *float64, doc string) Option {
	return Option{Name: name, Kind: "float", Default: def, Min: lo, Max: hi, Doc: doc}
}

func stringOpt(name, def string, choices []string, doc string) Option {
	return Option{Name: name, Kind: "string", Default: def, Choices: choices, Doc: doc}
}

// fromRank marks op's default as derived from the rank.
func fromRank(op Option) Option {
	op.FromRank = true
	return op
}

func boolOpt(name string, def bool, doc string) Option {
	return Option{Name: name, Kind: "bool", Default: def, Doc: doc}
}

// loraOptions are the options every LoRA-family method shares: rank,
// alpha, dropout and init (choices in order, the first is the default).
func loraOptions(rank int, alpha float64, inits ...string) []Option {
	return []Option{
		intOpt("rank", rank, 1, "adapter rank r"),
		floatOpt("alpha", alpha, fptr(0), nil, "scaling numerator α; a number or a multiple of the rank (\"2r\")"),
		{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Doc: "dropout on the adapter's input while training"},
		stringOpt("init", inits[0], inits, "initialisation of the adapter factors"),
	}
}
