package results

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRemoveTemps: the temp files of a crashed writer go; nothing else does.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	writeSweep(t, dir, []int{0})
	shard := ShardDir(dir, "t09")
	orphans := []string{
		filepath.Join(dir, tempPrefix+TrialsFile+"-123456"),
		filepath.Join(dir, tempPrefix+ManifestFile+"-1"),
		filepath.Join(dir, tempPrefix+ChecksumsFile+"-42"),
		filepath.Join(shard, tempPrefix+shardTrialFile+"-987"),
		filepath.Join(shard, tempPrefix+StepsFile+"-5"),
	}
	kept := []string{
		filepath.Join(dir, tempPrefix+"report.html-1"),           // not the writer's
		filepath.Join(dir, tempPrefix+TrialsFile+"-12x"),         // not its pattern
		filepath.Join(shard, tempPrefix+"weights.safetensors-1"), // a trainer's
		filepath.Join(shard, "trial.log"),
	}
	for _, p := range append(slices.Clone(orphans), kept...) {
		if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, tempPrefix+StepsFile+"-7"), 0o755); err != nil { // a folder: left
		t.Fatal(err)
	}
	removed, err := RemoveTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	slices.Sort(orphans)
	if !slices.Equal(removed, orphans) {
		t.Errorf("removed %q, want %q", removed, orphans)
	}
	for _, p := range orphans {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left", p)
		}
	}
	for _, p := range append(kept, filepath.Join(dir, tempPrefix+StepsFile+"-7")) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if _, err := ReadShard(dir, "t09"); err != nil {
		t.Errorf("shard after RemoveTemps: %v", err)
	}
}

// TestLockSweep: a second lock is refused naming the holder's pid; the
// lock comes free on Unlock; a lock file left by a dead process is taken.
func TestLockSweep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sweep")
	l, err := LockSweep(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockSweep(dir)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: err = %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after Unlock: %v", err)
	}
	// A run killed with its lock file in place.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	host, _ := os.Hostname()
	stale := `{"pid":` + strconv.Itoa(dead.Process.Pid) + `,"host":"` + host + `","started":"2025-01-01T00:00:00Z"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, LockFile), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = LockSweep(dir)
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, LockFile))
	if !strings.Contains(string(data), `"pid":`+strconv.Itoa(os.Getpid())) {
		t.Errorf("lock file after takeover = %s", data)
	}
	l.Unlock()
}

// TestArtifactPath: artifact paths stay inside the trial folder.
func TestArtifactPath(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "w.safetensors"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "w.safetensors"), filepath.Join(dir, "link.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"weights.safetensors", "sub/w.safetensors", "./sub/../weights.safetensors"} {
		got, err := ArtifactPath(dir, "weights", rel)
		if err != nil || got != filepath.Join(dir, rel) {
			t.Errorf("ArtifactPath(%q) = %q, %v; want %q", rel, got, err, filepath.Join(dir, rel))
		}
	}
	for _, rel := range []string{"", "/etc/passwd", filepath.Join(outside, "w.safetensors"), "../w.safetensors",
		"sub/../../w.safetensors", "..", "link.safetensors"} {
		if got, err := ArtifactPath(dir, "weights", rel); err == nil || !strings.Contains(err.Error(), "artifact weights") {
			t.Errorf("ArtifactPath(%q) = %q, %v; want an error naming the artifact", rel, got, err)
		}
	}
}
