package tasks

import (
	"fmt"
	"os"
	"testing"
)

// testCache is shared by the package's tests so that each base model is
// pretrained once per test run ($PEFTBENCH_TEST_CACHE keeps it between runs).
var testCache *Cache

func TestMain(m *testing.M) {
	dir := os.Getenv("PEFTBENCH_TEST_CACHE")
	if dir == "" {
		d, err := os.MkdirTemp("", "peftbench-tasks-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	c, err := NewCache(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c.Log = os.Stderr
	testCache = c
	code := m.Run()
	if os.Getenv("PEFTBENCH_TEST_CACHE") == "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
