package tasks

import (
	"slices"
	"testing"

	"peftbench/nn"
)

// TestMNISTSplitProtocol: by default mnist-split scores retain among the
// logits of digits 0–4 and target among those of 5–9 (task-incremental);
// protocol = "class-il" keeps the old scoring over all 10 logits. Neither
// changes the base model's cache key or the training data.
func TestMNISTSplitProtocol(t *testing.T) {
	if _, err := loadMNIST(); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		protocol       any // nil: the default
		retain, target []int
	}{
		{nil, []int{0, 1, 2, 3, 4}, []int{5, 6, 7, 8, 9}},
		{"task-il", []int{0, 1, 2, 3, 4}, []int{5, 6, 7, 8, 9}},
		{"class-il", nil, nil},
	} {
		opts := map[string]any{}
		if tc.protocol != nil {
			opts["protocol"] = tc.protocol
		}
		in, err := New("mnist-split", opts)
		if err != nil {
			t.Fatal(err)
		}
		for name, set := range map[string]struct {
			bs   []Batch
			want []int
		}{"retain": {in.Retain(), tc.retain}, "target": {in.Target(), tc.target}} {
			rows := 0
			for _, b := range set.bs {
				if !slices.Equal(b.Classes, set.want) {
					t.Fatalf("protocol %v: %s classes %v, want %v", tc.protocol, name, b.Classes, set.want)
				}
				rows += len(b.Labels)
			}
			if rows == 0 {
				t.Errorf("protocol %v: %s is empty", tc.protocol, name)
			}
		}
		if b := in.TrainBatch(nn.NewRNG(0, "test"), 4); b.Classes != nil {
			t.Errorf("protocol %v: training batch has classes %v", tc.protocol, b.Classes)
		}
	}
	task, _ := Lookup("mnist-split")
	a, _ := ResolveOptions("mnist-split", nil)
	b, _ := ResolveOptions("mnist-split", map[string]any{"protocol": "class-il"})
	if ka, kb := baseOptions(task.Info(), a), baseOptions(task.Info(), b); len(ka) != len(kb) || ka["protocol"] != nil {
		t.Errorf("protocol enters the base model's cache key: %v vs %v", ka, kb)
	}
	if _, err := ResolveOptions("mnist-split", map[string]any{"protocol": "domain-il"}); err == nil {
		t.Error("protocol domain-il accepted")
	}
}
