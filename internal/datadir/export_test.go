package datadir

// SetSteps replaces the migrations for a test and returns a restore func.
func SetSteps(s []Step) func() {
	old := steps
	steps = s
	return func() { steps = old }
}

// StepCount is len(steps).
func StepCount() int { return len(steps) }
