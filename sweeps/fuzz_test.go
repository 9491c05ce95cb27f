package sweeps_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"peftbench/catalog"
	"peftbench/sweeps"
)

// FuzzLoad loads fuzzed sweep files against the real method and task
// registries (FuzzParse covers the fake catalog): no input makes Load
// panic or run for long, and every error is a *sweeps.Error naming the
// file (joined errors: each of them). Seeds: the committed corpus in
// testdata/fuzz/FuzzLoad, the experiments and the good and bad sweeps.
func FuzzLoad(f *testing.F) {
	for _, pat := range []string{"../experiments/*.toml", "testdata/good/*.toml", "testdata/bad/*.toml"} {
		files, _ := filepath.Glob(pat)
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.toml")
	f.Fuzz(func(t *testing.T, src []byte) {
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		type result struct {
			plan *sweeps.Plan
			err  error
		}
		done := make(chan result, 1)
		go func() {
			p, err := sweeps.Load(path, catalog.Registries{})
			done <- result{p, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Load ran for more than 10s on %q", src)
		}
		if r.err != nil {
			checkLocated(t, r.err, path)
			return
		}
		if len(r.plan.Trials) == 0 {
			t.Fatal("no error and no trials")
		}
	})
}

// checkLocated fails unless every error joined in err is a *sweeps.Error
// naming file.
func checkLocated(t *testing.T, err error, file string) {
	t.Helper()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			checkLocated(t, e, file)
		}
		return
	}
	var e *sweeps.Error
	if !errors.As(err, &e) || e.File != file {
		t.Fatalf("error %v is not a *sweeps.Error naming %s", err, file)
	}
}
