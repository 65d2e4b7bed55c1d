// Package promobserver exports what a seenhandler.Handler observes as
// Prometheus metrics, so that an app imports them rather than writing its
// own observer; it lives apart from seenhandler so that the handler links
// no metrics library.
//
//	reg := prometheus.NewRegistry()
//	obs, queueDepth, err := promobserver.New(reg)
//	if err != nil {
//		return err
//	}
//	worker, err := queue.New(queue.Options{Observer: obs, QueueDepth: queueDepth})
//	…
//	h, err := seenhandler.New(sessions, seenhandler.WithAuth(auth), seenhandler.WithObserver(obs), seenhandler.WithLater(worker))
//	…
//	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
package promobserver
