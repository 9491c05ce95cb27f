package nn_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"peftbench/nn"
)

// TestTorchGeneratorMatchesTorch draws from torch.Generator().manual_seed
// with Tensor.uniform_ in PyTorch and from TorchGenerator here: every
// float32 is identical, across the Mersenne Twister's 624-word refills.
func TestTorchGeneratorMatchesTorch(t *testing.T) {
	py := torchPython(t)
	cases := []struct {
		seed     uint64
		n        int
		from, to float64
	}{
		{0, 5, -1, 1},
		{0, 1300, -math.Sqrt(6.0 / 48), math.Sqrt(6.0 / 48)},
		{12345, 2000, -0.3, 0.3},
		{1 << 40, 700, 0, 1}, // torch keeps the seed's low 32 bits for MT19937
		{7, 33, -1e-3, 2.5},
	}
	var src strings.Builder
	src.WriteString("import json, torch\nout = []\n")
	for _, c := range cases {
		fmt.Fprintf(&src, "g = torch.Generator().manual_seed(%d)\nout.append(torch.empty(%d).uniform_(%s, %s, generator=g).tolist())\n",
			c.seed, c.n, strconv.FormatFloat(c.from, 'g', 17, 64), strconv.FormatFloat(c.to, 'g', 17, 64))
	}
	src.WriteString("print(json.dumps(out))\n")
	out, err := exec.Command(py, "-c", src.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var want [][]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, c := range cases {
		g := nn.NewTorchGenerator(c.seed)
		got := nn.New(c.n)
		g.FillUniform(got, c.from, c.to)
		for j, w := range want[i] {
			if got.Data[j] != float32(w) {
				t.Errorf("seed %d, U(%g, %g): element %d = %v, torch %v", c.seed, c.from, c.to, j, got.Data[j], float32(w))
				break
			}
		}
	}
}

// TestTorchRandpermMatchesTorch compares Randperm with torch.randperm on a
// seeded generator, including sizes that cross the twister's refill.
func TestTorchRandpermMatchesTorch(t *testing.T) {
	py := torchPython(t)
	cases := []struct {
		seed uint64
		n    int
	}{{777, 10}, {777, 1000}, {3, 5000}, {0, 1}, {42, 2}}
	var src strings.Builder
	src.WriteString("import json, torch\nout = []\n")
	for _, c := range cases {
		fmt.Fprintf(&src, "out.append(torch.randperm(%d, generator=torch.Generator().manual_seed(%d)).tolist())\n", c.n, c.seed)
	}
	src.WriteString("print(json.dumps(out))\n")
	out, err := exec.Command(py, "-c", src.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var want [][]int
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, c := range cases {
		got := nn.NewTorchGenerator(c.seed).Randperm(c.n)
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("randperm(%d) seed %d: got %v…, torch %v…", c.n, c.seed, got[:min(8, c.n)], want[i][:min(8, c.n)])
		}
	}
}
