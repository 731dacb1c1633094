package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kitewatch/kitewatch/internal/store"
)

// taskCollector reports background tasks by kind and state from the task
// table at scrape time.
type taskCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func newTaskCollector(db *store.DB) *taskCollector {
	return &taskCollector{db: db, desc: prometheus.NewDesc("kitewatch_tasks",
		"Background tasks in the queue by kind and state.", []string{"kind", "state"}, nil)}
}

func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.db.Writer().QueryContext(ctx, `SELECT kind, state, COUNT(*) FROM river_job GROUP BY kind, state`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var kind, state string
		var n float64
		if rows.Scan(&kind, &state, &n) == nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, kind, state)
		}
	}
}
