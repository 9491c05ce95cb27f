package tasks

// validationSize is the number of validation examples of a task whose
// target set has n: a quarter (at least one), so that evaluating it at
// every eval_every point adds a quarter of the target's cost.
func validationSize(n int) int { return max(1, n/4) }
