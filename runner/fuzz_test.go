package runner

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzReporter counts what readMessages forwards.
type fuzzReporter struct{ steps, summaries, artifacts, logs int }

func (r *fuzzReporter) Step(int, string, string, float64) { r.steps++ }
func (r *fuzzReporter) Summary(string, float64)           { r.summaries++ }
func (r *fuzzReporter) Artifact(string, string)           { r.artifacts++ }
func (r *fuzzReporter) Log(string)                        { r.logs++ }

// FuzzReadMessages feeds fuzzed trainer stdout to the protocol reader
// (docs/trainer-protocol.md): it never panics or blocks, a nil error means
// a summary arrived, and every error is the missing summary, a divergence,
// or names the stdout line at fault. Seeds: testdata/fuzz/FuzzReadMessages.
func FuzzReadMessages(f *testing.F) {
	f.Add([]byte(`{"type":"metric","step":1,"split":"train","name":"loss","value":0.5}` + "\n" +
		`{"type":"summary","metrics":{"target_loss":0.25,"target_acc":"NaN"}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(fuzzReporter)
		done := make(chan error, 1)
		go func() { done <- readMessages(bytes.NewReader(data), r) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("readMessages ran for more than 10s on %d bytes", len(data))
		}
		var de *DivergedError
		switch {
		case err == nil:
			if r.summaries == 0 {
				t.Fatal("no error and no summary")
			}
		case errors.Is(err, errNoSummary), errors.As(err, &de):
		case strings.HasPrefix(err.Error(), "stdout line "), strings.HasPrefix(err.Error(), "stdout: "):
		default:
			t.Fatalf("error %q names no stdout line", err)
		}
	})
}
