package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func init() {
	// The golden-file tests of this package share one -update flag.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares a command's output with testdata/<name>, or
// rewrites it under -update; what names the command in the message.
func checkGolden(t *testing.T, name, what string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run go test -update after checking):\n%s", what, path, got)
	}
}

// TestRegistryListingsGolden checks bench methods and bench tasks, as
// tables and as JSON, against their golden files.
func TestRegistryListingsGolden(t *testing.T) {
	for _, c := range []struct {
		cmd    string
		run    func([]string, io.Writer, io.Writer) error
		args   []string
		golden string
	}{
		{"methods", runMethods, nil, "methods.txt"},
		{"methods", runMethods, []string{"--json"}, "methods.json"},
		{"tasks", runTasks, nil, "tasks.txt"},
		{"tasks", runTasks, []string{"--json"}, "tasks.json"},
	} {
		var out, errb bytes.Buffer
		if err := c.run(c.args, &out, &errb); err != nil {
			t.Fatalf("bench %s %v: %v\n%s", c.cmd, c.args, err, errb.String())
		}
		checkGolden(t, c.golden, fmt.Sprintf("bench %s %v", c.cmd, c.args), out.Bytes())
	}
}

func TestMethodsJSONListsTheTwelve(t *testing.T) {
	var out bytes.Buffer
	if err := runMethods([]string{"--json"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range got {
		for _, k := range []string{"name", "family", "paper", "options"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v lacks %q", m["name"], k)
			}
		}
		names[m["name"].(string)] = true
	}
	for _, n := range []string{"full", "lora", "rslora", "loraplus", "lora-fa", "dora", "pissa", "olora", "vera", "lora-xs", "adalora", "lora-ga"} {
		if !names[n] {
			t.Errorf("bench methods --json does not list %s", n)
		}
	}
}

func TestMethodsRejectsArguments(t *testing.T) {
	var out bytes.Buffer
	if err := runMethods([]string{"lora"}, &out, &out); err == nil {
		t.Error("bench methods lora: no error")
	}
}
