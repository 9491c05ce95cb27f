package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestTasksJSONListsAll(t *testing.T) {
	var out bytes.Buffer
	if err := runTasks([]string{"--json"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range got {
		for _, k := range []string{"name", "description", "architecture", "metrics", "options"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v lacks %q", m["name"], k)
			}
		}
		if opts, _ := m["options"].([]any); len(opts) == 0 {
			t.Errorf("%v lists no options", m["name"])
		}
		names[m["name"].(string)] = true
	}
	for _, n := range []string{"teacher-shift", "mnist-split", "mnist-permuted", "modarith", "safety-guard"} {
		if !names[n] {
			t.Errorf("bench tasks --json does not list %s", n)
		}
	}
}

func TestTasksRejectsArguments(t *testing.T) {
	var out bytes.Buffer
	if err := runTasks([]string{"mnist"}, &out, &out); err == nil {
		t.Error("bench tasks mnist: no error")
	}
}
