package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestTorchCrossCheck has PyTorch write a safetensors file by hand from the
// specification (the safetensors pip package is not assumed) and read back
// one written here, parsing the header with json and the data with numpy.
func TestTorchCrossCheck(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	fromTorch := filepath.Join(dir, "torch.safetensors")
	fromGo := filepath.Join(dir, "go.safetensors")
	data := []float32{1, -2.5, 3e-5, 65504, float32(math.Inf(-1)), 1.0 / 3}
	writeT(t, fromGo,
		Tensor{Name: "f32", Shape: []int{2, 3}, Data: data},
		Tensor{Name: "f16", DType: F16, Shape: []int{6}, Data: data},
		Tensor{Name: "bf16", DType: BF16, Shape: []int{3, 2}, Data: data})
	script := fmt.Sprintf(`
import json, struct, sys, numpy as np, torch
g = torch.Generator().manual_seed(0)
x = torch.randn(3, 4, generator=g) * 100
x[0, 0] = 1e-7  # F16 subnormal
ts = {"f32": x, "f16": x.to(torch.float16), "bf16": x.to(torch.bfloat16), "f64": x.to(torch.float64)}
names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
hdr, buf = {"__metadata__": {"writer": "torch"}}, b""
for k, v in ts.items():
    raw = (v.view(torch.int16) if v.dtype == torch.bfloat16 else v).numpy().tobytes()
    hdr[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [len(buf), len(buf) + len(raw)]}
    buf += raw
h = json.dumps(hdr).encode()
h += b" " * (-len(h) %% 8)
open(%q, "wb").write(struct.pack("<Q", len(h)) + h + buf)
# What each tensor is as float32, for the Go side to compare.
for k, v in ts.items():
    sys.stdout.buffer.write(v.to(torch.float32).numpy().tobytes())

# Read the Go-written file.
b = open(%q, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8+n])
want = torch.tensor(%s, dtype=torch.float32)
dt = {"F32": (np.float32, None), "F16": (np.float16, None), "BF16": (np.int16, torch.bfloat16)}
for k in ("f32", "f16", "bf16"):
    info = hdr[k]
    s, e = info["data_offsets"]
    npdt, view = dt[info["dtype"]]
    v = torch.from_numpy(np.frombuffer(b[8+n+s:8+n+e], dtype=npdt).copy())
    if view is not None:
        v = v.view(view)
    v = v.to(torch.float32).reshape(info["shape"]).flatten()
    w = want.to({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[info["dtype"]]).to(torch.float32)
    if not torch.equal(v, w):
        sys.stderr.write("go-written %%s differs: %%s vs %%s\n" %% (k, v, w))
        sys.exit(1)
`, fromTorch, fromGo, strings.ReplaceAll(fmt.Sprint(data), " ", ", "))
	script = strings.Replace(script, "-Inf", "float('-inf')", 1)
	cmd := exec.Command(py, "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	f, err := Open(fromTorch)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); !reflect.DeepEqual(got, map[string]string{"writer": "torch"}) {
		t.Errorf("Metadata = %q", got)
	}
	for i, name := range []string{"f32", "f16", "bf16", "f64"} {
		got, shape, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(shape, []int{3, 4}) || len(out) < (i+1)*48 {
			t.Fatalf("%s: shape %v, %d bytes from python", name, shape, len(out))
		}
		for j, v := range got {
			want := math.Float32frombits(binary.LittleEndian.Uint32(out[i*48+4*j:]))
			if v != want {
				t.Errorf("%s[%d] = %g, torch %g", name, j, v, want)
			}
		}
	}
}
