package tasks

import (
	"errors"
	"slices"
	"testing"

	"peftbench/nn"
)

func TestTextCodeWindows(t *testing.T) {
	stream := []uint8{10, 11, 12, 13, 14, 15, 16}
	b := windows(stream, 3, []int{0, 3})
	if b.N != 2 || b.Seq != 3 ||
		!slices.Equal(b.IDs, []int{10, 11, 12, 13, 14, 15}) ||
		!slices.Equal(b.Labels, []int{11, 12, 13, 14, 15, 16}) {
		t.Errorf("windows = %+v", b)
	}
	// Evenly spaced evaluation windows cover the stream to its last
	// valid start.
	ev := evalWindows(stream, 3, 4)
	if len(ev) != 1 || !slices.Equal(ev[0].IDs[:3], []int{10, 11, 12}) || !slices.Equal(ev[0].Labels[9:], []int{14, 15, 16}) {
		t.Errorf("evalWindows = %+v", ev)
	}
}

func TestTextCodeInstance(t *testing.T) {
	opts := map[string]any{"seq": 16, "eval_size": 100}
	in, err := New("text-code", opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := New("text-code", map[string]any{"seq": 16, "eval_size": 100, "base_seed": 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []struct {
		name string
		a, b []Batch
	}{{"retain", in.Retain(), again.Retain()}, {"target", in.Target(), again.Target()}} {
		var n int
		for i, b := range set.a {
			n += b.N
			if len(b.IDs) != b.N*16 || len(b.Labels) != len(b.IDs) || !slices.Equal(b.IDs, set.b[i].IDs) {
				t.Errorf("%s batch %d: %d ids, %d labels for %d windows, or differs with base_seed", set.name, i, len(b.IDs), len(b.Labels), b.N)
			}
		}
		if n != 100 {
			t.Errorf("%s: %d windows, want eval_size 100", set.name, n)
		}
	}
	c, _ := loadGoCorpus()
	// code_frac 1 draws code only, 0 prose only: count characters that
	// are far more common in one than in the other (tabs: indentation).
	for _, tc := range []struct {
		frac     float64
		wantTabs bool
	}{{1, true}, {0, false}} {
		opts["code_frac"] = tc.frac
		in, err := New("text-code", opts)
		if err != nil {
			t.Fatal(err)
		}
		b := in.TrainBatch(nn.NewRNG(1, "test"), 64)
		if b.N != 64 || b.Seq != 16 || len(b.IDs) != 64*16 || len(b.Labels) != len(b.IDs) {
			t.Fatalf("code_frac %v: batch of %d×%d with %d ids, %d labels", tc.frac, b.N, b.Seq, len(b.IDs), len(b.Labels))
		}
		tabs := slices.Contains(b.IDs, int(charID('\t')))
		if tabs != tc.wantTabs {
			t.Errorf("code_frac %v: tabs in the batch = %v", tc.frac, tabs)
		}
	}
	if slices.Contains(c.trainProse, charID('\t')) {
		t.Error("training prose holds a tab")
	}
	_, err = New("text-code", map[string]any{"dim": 64, "heads": 5})
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Key != "heads" {
		t.Errorf("heads 5, dim 64: error %v, want an OptionError for heads", err)
	}
}
