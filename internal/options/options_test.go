package options

import (
	"encoding/json"
	"errors"
	"testing"
)

func fptr(v float64) *float64 { return &v }

func TestPerRank(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"r", 1, true}, {"2r", 2, true}, {"0.5r", 0.5, true}, {".5r", 0.5, true}, {"2*r", 2, true}, {" 2 * r ", 2, true},
		{"16", 0, false}, {"2x", 0, false}, {"-2r", 0, false}, {".r", 0, false}, {"*r", 0, false}, {"infr", 0, false}, {"nanr", 0, false},
	}
	for _, c := range cases {
		got, ok := PerRank(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("PerRank(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

var decl = []Option{
	{Name: "alpha", Kind: "float", Default: 8.0, Min: fptr(0)},
	{Name: "rank", Kind: "int", Default: 8, Min: fptr(1)},
	{Name: "dropout", Kind: "float", Default: 0.0, Min: fptr(0), Max: fptr(1), MaxOpen: true},
	{Name: "init", Kind: "string", Default: "kaiming", Choices: []string{"kaiming", "gaussian"}},
	{Name: "merge", Kind: "bool", Default: true},
}

func TestResolve(t *testing.T) {
	o, err := Resolve("methods", "m", decl, map[string]any{"alpha": "2*r", "rank": int64(4), "dropout": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if o.Float("alpha") != 8 || o.Int("rank") != 4 || o.Float("dropout") != 0.5 || o.String("init") != "kaiming" || !o.Bool("merge") {
		t.Errorf("resolved %v", o)
	}
	again, err := Resolve("methods", "m", decl, o)
	if err != nil || len(again) != len(o) || again.Float("alpha") != 8 {
		t.Errorf("resolving resolved options: %v, %v", again, err)
	}
	// JSON numbers (float64) for ints.
	if o, err := Resolve("tasks", "t", decl, map[string]any{"rank": 2.0}); err != nil || o.Int("rank") != 2 {
		t.Errorf("rank 2.0: %v, %v", o, err)
	}
	for _, c := range []struct {
		opts map[string]any
		key  string
	}{
		{map[string]any{"alhpa": 1.0}, "alhpa"},
		{map[string]any{"alpha": -1.0}, "alpha"},
		{map[string]any{"alpha": "2x"}, "alpha"},
		{map[string]any{"rank": 0}, "rank"},
		{map[string]any{"rank": 2.5}, "rank"},
		{map[string]any{"dropout": 1.0}, "dropout"},
		{map[string]any{"init": "kaimin"}, "init"},
		{map[string]any{"merge": "yes"}, "merge"},
	} {
		_, err := Resolve("methods", "m", decl, c.opts)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != c.key || oe.Name != "m" || oe.Registry != "methods" {
			t.Errorf("%v: error %v, want an *OptionError on %s", c.opts, err, c.key)
		}
	}
	// Without a rank option, a string is not a number.
	if _, err := Resolve("tasks", "t", decl[:1], map[string]any{"alpha": "2r"}); err == nil {
		t.Error(`alpha "2r" without a rank option accepted`)
	}
}

// TestOptionJSON pins the field names and order of `bench methods --json`
// and `bench tasks --json`; FromRank is not printed.
func TestOptionJSON(t *testing.T) {
	b, err := json.Marshal(Option{Name: "x", Kind: "float", Default: 1.0, Min: fptr(0), Max: fptr(1), MaxOpen: true, Choices: []string{"a"}, Doc: "d", Base: true, FromRank: true})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"name":"x","kind":"float","default":1,"min":0,"max":1,"max_open":true,"choices":["a"],"doc":"d","base":true}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
}
