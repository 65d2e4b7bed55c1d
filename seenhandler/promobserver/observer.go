package promobserver

import (
	"context"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
)

// Observer exports seenhandler's observations as Prometheus metrics. It
// implements seenhandler.Observer, seenhandler.ViewObserver and
// queue.DepthObserver; give it to seenhandler.WithObserver (and, for the
// queue's depth and auto-read's drops, to queue.Options.Observer). It is safe
// for concurrent use.
//
// Its metrics: bluetick_requests_total{endpoint,dialect,session,code}
// (code "ok" for a success), bluetick_request_duration_seconds{endpoint,dialect},
// bluetick_receipts_sent_total{session}, bluetick_messages_sent_total{session},
// bluetick_messages_skipped_total{session},
// bluetick_backend_errors_total{session,op,code},
// bluetick_async_queue_depth and
// bluetick_time_to_view_seconds{session,auto}. A session that does not exist
// mints no label value (its requests count under session="").
type Observer struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	receipts      *prometheus.CounterVec
	messages      *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	queue         prometheus.Gauge
	timeToView    *prometheus.HistogramVec
}

var (
	_ seenhandler.Observer     = (*Observer)(nil)
	_ seenhandler.ViewObserver = (*Observer)(nil)
	_ queue.DepthObserver      = (*Observer)(nil)
)

// New returns an Observer whose metrics are registered with reg. It fails
// when reg refuses one (a metric of the same name registered already).
func New(reg prometheus.Registerer) (*Observer, error) {
	o := &Observer{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bluetick_requests_total", Help: "Requests answered, by endpoint, dialect, session and error code (ok for 200).",
		}, []string{"endpoint", "dialect", "session", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bluetick_request_duration_seconds", Help: "Time from a request's arrival to its answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint", "dialect"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bluetick_receipts_sent_total", Help: "Receipts (backend calls) sent.",
		}, []string{"session"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bluetick_messages_sent_total", Help: "Message ids carried by the receipts sent.",
		}, []string{"session"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bluetick_messages_skipped_total", Help: "Message ids not sent (the account's own messages).",
		}, []string{"session"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bluetick_backend_errors_total", Help: "Backend failures, by session, operation and the error code they map to.",
		}, []string{"session", "op", "code"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bluetick_async_queue_depth", Help: "Receipts of asynchronous requests waiting to be sent.",
		}),
		timeToView: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bluetick_time_to_view_seconds",
			Help: "Time from a message's arrival to its read receipt, by session and whether auto-read sent it (messages whose time the session knows).",
			// From a second to a day: people read within minutes or hours.
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600},
		}, []string{"session", "auto"}),
	}
	for _, c := range []prometheus.Collector{o.requests, o.duration, o.receipts, o.messages, o.skipped, o.backendErrors, o.queue, o.timeToView} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("promobserver: %w", err)
		}
	}
	return o, nil
}

// RequestDone implements seenhandler.Observer.
func (o *Observer) RequestDone(_ context.Context, r seenhandler.RequestInfo) {
	code := r.Code
	if code == "" {
		code = "ok"
	}
	o.requests.WithLabelValues(string(r.Endpoint), r.Dialect, r.Session, code).Inc()
	o.duration.WithLabelValues(string(r.Endpoint), r.Dialect).Observe(r.Latency.Seconds())
	if r.Receipts > 0 {
		o.receipts.WithLabelValues(r.Session).Add(float64(r.Receipts))
		o.messages.WithLabelValues(r.Session).Add(float64(r.Messages))
	}
	if r.Skipped > 0 {
		o.skipped.WithLabelValues(r.Session).Add(float64(r.Skipped))
	}
}

// BackendError implements seenhandler.Observer.
func (o *Observer) BackendError(_ context.Context, e seenhandler.BackendErrorInfo) {
	o.backendErrors.WithLabelValues(e.Session, string(e.Op), e.Code).Inc()
}

// MessageViewed implements seenhandler.ViewObserver.
func (o *Observer) MessageViewed(_ context.Context, v seenhandler.ViewInfo) {
	o.timeToView.WithLabelValues(v.Session, strconv.FormatBool(v.Auto)).Observe(v.TimeToView.Seconds())
}

// QueueDepth implements queue.DepthObserver.
func (o *Observer) QueueDepth(_ context.Context, depth int) {
	o.queue.Set(float64(depth))
}
