package configs

import "slices"

// Numeric lists every per-trial number of the registry, in table order:
// the trials.parquet columns, then the extra metrics whose direction is
// known. Views that let a user pick any column (the report's Pareto view)
// read it instead of naming columns, so a column added to the registry
// shows up there.
func Numeric() []Column {
	return slices.Concat(columns, extras)
}
