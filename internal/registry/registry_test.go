package registry

import (
	"slices"
	"strings"
	"testing"
)

func TestSet(t *testing.T) {
	s := New[int]("things", "thing")
	s.Register("lora", "lora", 1)
	s.Register("dora", "dora", 2)
	if got := s.Names(); !slices.Equal(got, []string{"dora", "lora"}) {
		t.Errorf("Names = %q", got)
	}
	if v, err := s.Lookup("lora"); err != nil || v != 1 {
		t.Errorf("Lookup(lora) = %d, %v", v, err)
	}
	_, err := s.Lookup("lroa")
	if err == nil || !strings.Contains(err.Error(), `things: unknown thing "lroa" (did you mean "lora"`) {
		t.Errorf("Lookup(lroa) error = %v", err)
	}
	for _, tc := range []struct{ name, self string }{{"", ""}, {"lora", "lora"}, {"vera", "VeRA"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q, %q) did not panic", tc.name, tc.self)
				}
			}()
			s.Register(tc.name, tc.self, 3)
		}()
	}
}
