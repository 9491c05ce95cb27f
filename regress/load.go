package regress

import (
	"fmt"
	"os"
	"path/filepath"

	"peftbench/results"
)

// LoadTrials reads the trials table of a run: path is a sweep folder
// holding trials.parquet, or the table file itself.
func LoadTrials(path string) ([]results.TrialRow, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("regress: %w", err)
	}
	if fi.IsDir() {
		table := filepath.Join(path, results.TrialsFile)
		if _, err := os.Stat(table); err != nil {
			return nil, fmt.Errorf("regress: %s has no %s (is it a finished sweep's folder?)", path, results.TrialsFile)
		}
		path = table
	}
	return results.ReadTrials(path)
}
