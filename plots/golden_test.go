package plots

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// goldenDPI keeps the committed PNGs small; rendering is deterministic
// (gonum/plot's embedded Liberation fonts, no system fonts).
const goldenDPI = 72

// TestGolden renders every figure of the fixture and compares it with the
// committed PNG, allowing a small fraction of pixels to differ (antialiasing
// across platforms). go test -update rewrites the goldens.
func TestGolden(t *testing.T) {
	d, err := Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	figs, skips, err := Figures(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skips {
		if s.Kind != "intruders-matched" { // needs a learning-rate axis: TestIntrudersMatched
			t.Errorf("the fixture supports every figure, but got a skip: %v", s)
		}
	}
	seen := map[string]bool{"intruders-matched": true}
	for _, f := range figs {
		seen[f.Kind] = true
		t.Run(f.Name, func(t *testing.T) {
			got, err := f.encode("png", goldenDPI)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, f.Name, got)
		})
	}
	for _, k := range kinds {
		if !seen[k.name] {
			t.Errorf("no figure of kind %s from the fixture", k.name)
		}
	}
}

// checkGolden compares a rendered PNG with testdata/golden/<name>.png,
// allowing 0.2% of pixels to differ; -update rewrites the golden.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".png")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bad, total, err := pixelDiff(got, want); err != nil {
		t.Fatal(err)
	} else if float64(bad) > 0.002*float64(total) {
		os.WriteFile(filepath.Join(t.TempDir(), "got.png"), got, 0o644)
		t.Errorf("%d of %d pixels differ from %s (run go test -update if the change is intended)", bad, total, path)
	}
}

// pixelDiff counts pixels whose colour differs by more than 24/255 in any
// channel; images of different sizes are an error.
func pixelDiff(a, b []byte) (bad, total int, err error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return 0, 0, err
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, 0, err
	}
	if ia.Bounds() != ib.Bounds() {
		return 0, 0, &sizeError{ia.Bounds(), ib.Bounds()}
	}
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := ia.At(x, y).RGBA()
			r2, g2, b2, a2 := ib.At(x, y).RGBA()
			if far(r1, r2) || far(g1, g2) || far(b1, b2) || far(a1, a2) {
				bad++
			}
		}
	}
	return bad, r.Dx() * r.Dy(), nil
}

func far(a, b uint32) bool {
	d := int(a>>8) - int(b>>8)
	return d > 24 || d < -24
}

type sizeError struct{ got, want image.Rectangle }

func (e *sizeError) Error() string {
	return "image size " + e.got.String() + ", golden " + e.want.String()
}
