package app

// wireAnalysis registers the failure-analysis worker (analyze_build tasks)
// and its routes.
func (a *App) wireAnalysis() {}
