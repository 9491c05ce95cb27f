package tasks

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLookupSuggests(t *testing.T) {
	_, err := Lookup("mnist-splt")
	if err == nil || !strings.Contains(err.Error(), `"mnist-split"`) {
		t.Errorf("Lookup(mnist-splt) = %v, want a suggestion of mnist-split", err)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	Register("teacher-shift", teacherShift{})
}

func TestResolveOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]any
		key  string // "" = valid
	}{
		{nil, ""},
		{map[string]any{"perturb_rank": int64(8), "perturb_scale": 1}, ""},
		{map[string]any{"perturb_rank": 8.0}, ""},
		{map[string]any{"perturb_rank": 8.5}, "perturb_rank"},
		{map[string]any{"perturb_rnk": 8}, "perturb_rnk"},
		{map[string]any{"dim": 1}, "dim"},
		{map[string]any{"merge": "yes"}, "merge"},
		{map[string]any{"perturb_scale": "big"}, "perturb_scale"},
	} {
		o, err := ResolveOptions("teacher-shift", tc.opts)
		var oe *OptionError
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%v: %v", tc.opts, err)
		case tc.key != "" && (!errors.As(err, &oe) || oe.Key != tc.key):
			t.Errorf("%v: error %v, want an OptionError for %s", tc.opts, err, tc.key)
		case tc.key == "":
			if len(o) != len(teacherShift{}.Info().Options) {
				t.Errorf("%v: resolved %d options, want all", tc.opts, len(o))
			}
			if _, err := ResolveOptions("teacher-shift", o); err != nil {
				t.Errorf("resolving resolved options: %v", err)
			}
		}
	}
}

func TestLayersWithoutPretraining(t *testing.T) {
	ls, err := Layers("modarith", map[string]any{"dim": 32, "blocks": 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 13 || ls[4] != (LayerShape{Name: "blocks.0.mlp.up", Out: 128, In: 32, Bias: true}) || ls[12] != (LayerShape{Name: "head", Out: 26, In: 32, Bias: false}) {
		t.Errorf("Layers(modarith) = %v", ls)
	}
}

func TestNormsWithoutPretraining(t *testing.T) {
	ns, err := Norms("modarith", map[string]any{"dim": 32, "blocks": 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []NormShape{{Name: "blocks.0.ln1", Dim: 32, Bias: true}, {Name: "blocks.0.ln2", Dim: 32, Bias: true}, {Name: "blocks.1.ln1", Dim: 32, Bias: true}, {Name: "blocks.1.ln2", Dim: 32, Bias: true}, {Name: "ln_f", Dim: 32, Bias: true}}
	if !slices.Equal(ns, want) {
		t.Errorf("Norms(modarith) = %v, want %v", ns, want)
	}
	if ns, err := Norms("teacher-shift", nil); err != nil || len(ns) != 0 {
		t.Errorf("Norms(teacher-shift) = %v, %v; want none", ns, err)
	}
}
