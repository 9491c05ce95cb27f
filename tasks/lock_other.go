//go:build !unix

package tasks

import "context"

// lockFile is a no-op where flock is unavailable: single-flight then holds
// within one process only.
func lockFile(ctx context.Context, path string) (func(), error) { return func() {}, nil }
