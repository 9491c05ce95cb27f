package browsertest

import "testing"

func TestConsoleErrors(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want int
	}{
		{"", 0},
		{"[1:1:1127/143913.7:INFO:CONSOLE:1] \"boom\", source: file:///a.html (1)", 1},
		{"[1:1:1127/143913.7:INFO:CONSOLE(12)] \"Uncaught ReferenceError: f is not defined\", source: x (12)\nother", 1},
		{"[1:1:1127/143913.7:WARNING:gpu_init.cc(1)] GPU disabled\n[1:1:1127:INFO:CONSOLE:3] \"a\"\n[1:1:1127:INFO:CONSOLE:4] \"b\"", 2},
	} {
		if got := ConsoleErrors(tc.log); len(got) != tc.want {
			t.Errorf("ConsoleErrors(%q) = %q, want %d lines", tc.log, got, tc.want)
		}
	}
}
