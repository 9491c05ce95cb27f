package methods

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"peftbench/nn"
)

func TestRegistryHasTheTwelve(t *testing.T) {
	want := []string{"adalora", "dora", "full", "lora", "lora-fa", "lora-ga", "lora-xs", "loraplus", "olora", "pissa", "rslora", "vera"}
	got := Names()
	for _, w := range want {
		if _, err := Lookup(w); err != nil {
			t.Errorf("%s not registered: %v", w, err)
		}
	}
	if len(got) < len(want) {
		t.Errorf("Names() = %v, want at least %v", got, want)
	}
	for _, info := range Infos() {
		if info.Family == "" || info.ParamsFormula == "" || info.Summary == "" {
			t.Errorf("%s: incomplete Info %+v", info.Name, info)
		}
		if info.Name != "full" && (info.Paper.Title == "" || info.Paper.Year == 0 || info.Paper.ArXiv == "" && info.Paper.URL == "") {
			t.Errorf("%s: incomplete paper %+v", info.Name, info.Paper)
		}
		def, err := ResolveOptions(info.Name, 0, nil)
		if err != nil {
			t.Errorf("%s: defaults do not resolve: %v", info.Name, err)
			continue
		}
		// The conformance suite's second option set must exist, resolve and
		// differ from the defaults for every method that has options.
		if len(info.Options) > 0 {
			alt, err := ResolveOptions(info.Name, 0, info.AltOptions)
			switch {
			case len(info.AltOptions) == 0:
				t.Errorf("%s: no AltOptions: declare a non-default option set for the conformance suite", info.Name)
			case err != nil:
				t.Errorf("%s: AltOptions %v do not resolve: %v", info.Name, info.AltOptions, err)
			case reflect.DeepEqual(alt, def):
				t.Errorf("%s: AltOptions %v are the defaults", info.Name, info.AltOptions)
			}
		}
		if (info.RandomInit != "") != (len(info.IdentityOptions) > 0) {
			t.Errorf("%s: RandomInit %q needs IdentityOptions (and only it): %v", info.Name, info.RandomInit, info.IdentityOptions)
		}
		if k := info.RankOptionName(); k != "" && !slices.ContainsFunc(info.Options, func(o Option) bool { return o.Name == k && o.Kind == "int" }) {
			t.Errorf("%s: rank axis sets option %q, which is not an int option of the method", info.Name, k)
		}
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering lora twice did not panic")
		}
	}()
	Register("lora", fullMethod{})
}

func TestLookupSuggests(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"lroa", `"lora"`},
		{"dorra", `"dora"`},
		{"pisa", `"pissa"`},
		{"ada-lora", `"adalora"`},
	} {
		_, err := Lookup(c.name)
		if err == nil || !strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Lookup(%q) = %v, want a suggestion of %s", c.name, err, c.want)
		}
	}
}

func TestResolveOptions(t *testing.T) {
	for _, c := range []struct {
		method string
		rank   int
		opts   map[string]any
		key    string // "" means no error
		check  func(Options) bool
	}{
		{"lora", 0, nil, "", func(o Options) bool {
			return o.Int("rank") == 8 && o.Float("alpha") == 8 && o.String("init") == "kaiming"
		}},
		{"lora", 16, map[string]any{"alpha": "2r"}, "", func(o Options) bool { return o.Int("rank") == 16 && o.Float("alpha") == 32 }},
		{"lora", 4, map[string]any{"alpha": "r"}, "", func(o Options) bool { return o.Float("alpha") == 4 }},
		{"lora", 0, map[string]any{"alpha": int64(16), "rank": int64(4)}, "", func(o Options) bool { return o.Float("alpha") == 16 && o.Int("rank") == 4 }},
		{"lora", 0, map[string]any{"alpha": -1.0}, "alpha", nil},
		{"lora", 0, map[string]any{"alpha": "twice"}, "alpha", nil},
		{"lora", 0, map[string]any{"init": "xavier"}, "init", nil},
		{"lora", 0, map[string]any{"dropout": 1.0}, "dropout", nil},
		{"lora", 0, map[string]any{"rnak": 4}, "rnak", nil},
		{"lora", 0, map[string]any{"rank": 2.5}, "rank", nil},
		{"lora", 8, map[string]any{"rank": 4}, "rank", nil},
		{"lora", -1, nil, "rank", nil},
		{"full", 8, nil, "rank", nil},
		{"loraplus", 0, nil, "", func(o Options) bool { return o.Float("lr_ratio") == 16 }},
		{"vera", 0, nil, "", func(o Options) bool { return o.Int("rank") == 256 && o.Float("d_initial") == 0.1 }},
		{"adalora", 0, nil, "", func(o Options) bool { return initRank(o) == 12 && o.Int("rank") == 8 }},
		{"pissa", 0, map[string]any{"init": "olora"}, "init", nil},
	} {
		o, err := ResolveOptions(c.method, c.rank, c.opts)
		if c.key == "" {
			if err != nil || !c.check(o) {
				t.Errorf("ResolveOptions(%s, %d, %v) = %v, %v", c.method, c.rank, c.opts, o, err)
			}
			continue
		}
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != c.key {
			t.Errorf("ResolveOptions(%s, %d, %v) error %v, want an OptionError on %q", c.method, c.rank, c.opts, err, c.key)
		}
	}
	// Resolving is idempotent.
	o, _ := ResolveOptions("lora", 16, map[string]any{"alpha": "2r"})
	o2, err := ResolveOptions("lora", 0, o)
	if err != nil || o2.Float("alpha") != 32 || o2.Int("rank") != 16 {
		t.Errorf("re-resolving %v gave %v, %v", o, o2, err)
	}
}

func TestCheckLayers(t *testing.T) {
	layers := []LayerShape{{Name: "fc1", Out: 256, In: 784}, {Name: "head", Out: 10, In: 256}}
	for _, c := range []struct {
		method string
		rank   int
		key    string
	}{
		{"lora", 8, ""},
		{"lora", 16, "rank"},
		{"pissa", 10, ""},
		{"pissa", 11, "rank"},
		{"lora-ga", 5, ""},
		{"lora-ga", 6, "rank"},
		{"adalora", 6, ""}, // init rank 9 ≤ 10
		{"adalora", 8, "init_rank"},
		{"vera", 256, ""}, // random projections, not a factorisation
		{"full", 0, ""},
	} {
		o, err := ResolveOptions(c.method, c.rank, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckLayers(c.method, o, layers)
		var oe *OptionError
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s r=%d: %v", c.method, c.rank, err)
		case c.key != "" && (!errors.As(err, &oe) || oe.Key != c.key):
			t.Errorf("%s r=%d: error %v, want one on %q", c.method, c.rank, err, c.key)
		case c.key != "" && !strings.Contains(err.Error(), "head"):
			t.Errorf("%s r=%d: error %q does not name the layer", c.method, c.rank, err)
		}
	}
}

func TestAttachRefusesAdaptedLayer(t *testing.T) {
	l := nn.NewLinear("fc", 8, 8, true, nn.NewRNG(1, "init"))
	if _, err := Attach("lora", []*nn.Linear{l}, map[string]any{"rank": 2}, nn.NewRNG(1, "m")); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach("lora", []*nn.Linear{l}, map[string]any{"rank": 2}, nn.NewRNG(1, "m")); err == nil {
		t.Error("attaching twice to one layer succeeded")
	}
}
