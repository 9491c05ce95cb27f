package configs

import "slices"

func sortFloats(xs []float64) { slices.Sort(xs) }
