package results

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLiveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	l, err := CreateLive(dir, "t1", 1, start)
	if err != nil {
		t.Fatal(err)
	}
	vals := []float64{0.5, 1.0 / 3, math.NaN(), math.Inf(1), math.Inf(-1), 1e-300}
	for i, v := range vals {
		if err := l.Append(int64(i), "train", "loss", v); err != nil {
			t.Fatal(err)
		}
	}
	lv, err := ReadLive(dir, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if lv.Header.Attempt != 1 || !lv.Header.Started.Equal(start) || len(lv.Steps) != len(vals) {
		t.Fatalf("header %+v, %d steps", lv.Header, len(lv.Steps))
	}
	for i, s := range lv.Steps {
		if s.Step != int64(i) || s.TrialID != "t1" || math.Float64bits(s.Value) != math.Float64bits(vals[i]) && !(math.IsNaN(s.Value) && math.IsNaN(vals[i])) {
			t.Errorf("step %d: %+v, want value %v", i, s, vals[i])
		}
	}

	// A torn last line is skipped; the next attempt replaces the log.
	f, _ := os.OpenFile(filepath.Join(ShardDir(dir, "t1"), LiveFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"step":9,"spl`)
	f.Close()
	if lv, err = ReadLive(dir, "t1"); err != nil || len(lv.Steps) != len(vals) {
		t.Fatalf("torn line: %v, %d steps", err, len(lv.Steps))
	}
	l.Close()
	l2, err := CreateLive(dir, "t1", 2, start)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	l2.Append(0, "train", "loss", 2)
	if lv, err = ReadLive(dir, "t1"); err != nil || lv.Header.Attempt != 2 || len(lv.Steps) != 1 {
		t.Fatalf("second attempt: %v, %+v", err, lv)
	}
	ids, err := LiveTrials(dir)
	if err != nil || len(ids) != 1 || ids[0] != "t1" {
		t.Fatalf("LiveTrials = %v, %v", ids, err)
	}
	if err := RemoveLive(dir, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLive(dir, "t1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after RemoveLive: %v", err)
	}
}

func TestLiveMalformed(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"no header", "", "no header"},
		{"other trial", `{"trial":"x","attempt":1}` + "\n", `names trial "x"`},
		{"bad line", `{"trial":"t1","attempt":1}` + "\n{oops}\n", "live.jsonl:2:"},
		{"missing field", `{"trial":"t1","attempt":1}` + "\n" + `{"step":1,"split":"train","value":1}` + "\n", "needs step"},
		{"bad value", `{"trial":"t1","attempt":1}` + "\n" + `{"step":1,"split":"train","metric":"loss","value":"big"}` + "\n", "not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(ShardDir(dir, "t1"), 0o755)
			os.WriteFile(filepath.Join(ShardDir(dir, "t1"), LiveFile), []byte(tc.data), 0o644)
			_, err := ReadLive(dir, "t1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	dir := t.TempDir()
	if a, err := ReadAnnotations(dir); err != nil || len(a) != 0 {
		t.Fatalf("empty: %v %v", a, err)
	}
	a, err := UpdateAnnotation(dir, "t1", func(a *Annotation) { a.Tags = append(a.Tags, "b", "a", "b"); a.Note = "<script>x</script>" })
	if err != nil || strings.Join(a.Tags, ",") != "a,b" {
		t.Fatalf("update: %+v %v", a, err)
	}
	all, err := ReadAnnotations(dir)
	if err != nil || all["t1"].Note != "<script>x</script>" || len(all["t1"].Tags) != 2 {
		t.Fatalf("read back: %+v %v", all, err)
	}
	for _, bad := range []string{"", " x", "a,b", "x\ny", strings.Repeat("x", MaxTagLen+1)} {
		if _, err := UpdateAnnotation(dir, "t1", func(a *Annotation) { a.Tags = append(a.Tags, bad) }); err == nil {
			t.Errorf("tag %q accepted", bad)
		}
	}
	if _, err := UpdateAnnotation(dir, "../x", func(*Annotation) {}); err == nil {
		t.Error("trial ID ../x accepted")
	}
	if _, err := UpdateAnnotation(dir, "t1", func(a *Annotation) { *a = Annotation{} }); err != nil {
		t.Fatal(err)
	}
	if all, _ := ReadAnnotations(dir); len(all) != 0 {
		t.Errorf("emptied annotation kept: %+v", all)
	}
}
