package results

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// ArtifactPath returns the path of the artifact name that a trainer
// reported at rel, relative to the trial's folder dir, as the trainer
// protocol requires. It refuses, naming the artifact, an absolute path, a
// path that leaves dir ("..", after filepath.Clean), and a path that
// leaves dir through a symbolic link, so that analysis never reads a file
// outside the trial's own folder.
func ArtifactPath(dir, name, rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("results: artifact %s: path %q is not inside the trial folder %s (artifact paths are relative to it)", name, rel, dir)
	}
	path := filepath.Join(dir, rel)
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil // reading it reports the missing file
	}
	if err != nil {
		return "", fmt.Errorf("results: artifact %s: %w", name, err)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("results: artifact %s: %w", name, err)
	}
	if r, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(r) || strings.HasPrefix(r, "..") {
		return "", fmt.Errorf("results: artifact %s: path %q leads outside the trial folder %s (to %s)", name, rel, dir, real)
	}
	return path, nil
}
