package promobserver

import (
	"context"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bluetick/bluetick/seenhandler"
)

// metrics are the Prometheus metrics of one [New].
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	receipts      *prometheus.CounterVec
	messages      *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	queue         prometheus.Gauge
	timeToView    *prometheus.HistogramVec
}

// New registers bluetick's metrics with reg and returns what feeds them:
// obs for seenhandler.WithObserver (and for queue.Options.Observer, which
// reports auto-read's drops), and queueDepth for queue.Options.QueueDepth,
// the queue's depth gauge. Both are safe for concurrent use. It fails when
// reg refuses a metric (one of the same name registered already).
//
// The metrics: bluetick_requests_total{endpoint,dialect,session,code}
// (code "ok" for a success), bluetick_request_duration_seconds{endpoint,dialect},
// bluetick_receipts_sent_total{session}, bluetick_messages_sent_total{session},
// bluetick_messages_skipped_total{session},
// bluetick_backend_errors_total{session,op,code},
// bluetick_async_queue_depth and
// bluetick_time_to_view_seconds{session,auto}. A session that does not exist
// mints no label value (its requests count under session="").
func New(reg prometheus.Registerer) (obs seenhandler.Observer, queueDepth func(ctx context.Context, depth int), err error) {
	o := &metrics{
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
			return seenhandler.Observer{}, nil, fmt.Errorf("promobserver: %w", err)
		}
	}
	obs = seenhandler.Observer{RequestDone: o.requestDone, BackendError: o.backendError, MessageViewed: o.messageViewed}
	return obs, o.queueDepth, nil
}

// requestDone is seenhandler.Observer's RequestDone.
func (o *metrics) requestDone(_ context.Context, r seenhandler.RequestInfo) {
	code := string(r.Code)
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

// backendError is seenhandler.Observer's BackendError.
func (o *metrics) backendError(_ context.Context, e seenhandler.BackendErrorInfo) {
	o.backendErrors.WithLabelValues(e.Session, string(e.Op), string(e.Code)).Inc()
}

// messageViewed is seenhandler.Observer's MessageViewed.
func (o *metrics) messageViewed(_ context.Context, v seenhandler.ViewInfo) {
	o.timeToView.WithLabelValues(v.Session, strconv.FormatBool(v.Auto)).Observe(v.TimeToView.Seconds())
}

// queueDepth is queue.Options.QueueDepth.
func (o *metrics) queueDepth(_ context.Context, depth int) {
	o.queue.Set(float64(depth))
}
