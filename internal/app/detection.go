package app

// wireDetection registers build detection (webhook intake, polling, ingest)
// and failure analysis with the server and the task queue.
func (a *App) wireDetection() {}
