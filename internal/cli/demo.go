package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

// demoBuildEvery is how often the demo simulator starts a build once a
// webhook endpoint is configured.
const demoBuildEvery = time.Minute

// demoWebhooks makes the demo simulator deliver signed webhooks to the
// server: when an admin configures (or rotates) the webhook endpoint, the
// endpoint is registered with the simulator, replacing the previous one,
// and from then on the simulator starts a build every interval — failing
// and passing in turn, across the demo pipelines — that moves through its
// states on its own, so builds arrive live by webhook.
type demoWebhooks struct {
	sim *bksim.Server
	// base returns the server's own base URL (its listen address): the
	// configured public URL may not be reachable from inside the process.
	base     func() string
	interval time.Duration
	step     time.Duration
	out      io.Writer

	mu      sync.Mutex
	hookID  int
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
	started int
}

// configured registers an endpoint with the simulator; it is
// app.Deps.OnWebhookConfigured in demo mode. The secret is never printed.
func (d *demoWebhooks) configured(url, secret, mode string) {
	if _, path, ok := strings.Cut(url, "/webhooks/"); ok {
		url = strings.TrimRight(d.base(), "/") + "/webhooks/" + path
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	if d.hookID != 0 {
		_ = d.sim.RemoveWebhook(d.hookID)
		d.hookID = 0
	}
	id, err := d.sim.AddWebhook(bksim.WebhookConfig{URL: url, Token: secret, Mode: mode})
	if err != nil {
		fmt.Fprintln(d.out, "demo: could not register the webhook endpoint with the simulator:", err)
		return
	}
	d.hookID = id
	if d.stop == nil {
		d.stop = make(chan struct{})
		d.wg.Add(1)
		go d.run()
		fmt.Fprintf(d.out, "Demo: the simulator now delivers signed webhooks to %s and starts a build every %s.\n", url, d.interval)
	}
}

// run starts a build at once and then every interval until close.
func (d *demoWebhooks) run() {
	defer d.wg.Done()
	pipelines := []string{"acme/api", "acme/web", "acme/shop"}
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for i := 0; ; i++ {
		outcome := "passed"
		if i%2 == 0 {
			outcome = "failed"
		}
		if _, err := d.sim.StartBuild(bksim.StartSpec{Pipeline: pipelines[i%len(pipelines)], Outcome: outcome,
			Message: fmt.Sprintf("Demo build %d", i+1), Interval: bksim.Duration(d.step)}); err != nil {
			fmt.Fprintln(d.out, "demo: could not start a build:", err)
		} else {
			d.mu.Lock()
			d.started++
			d.mu.Unlock()
		}
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}

// close stops starting builds; the simulator's own Close stops delivery.
// It may be called more than once.
func (d *demoWebhooks) close() {
	d.mu.Lock()
	stop := d.stop
	if d.stopped {
		stop = nil
	}
	d.stopped = true
	d.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	d.wg.Wait()
}
