package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on")
	flag.Parse()
	token := os.Getenv("BLUETICK_TOKEN")
	if token == "" {
		token = "demo-token"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux, err := newMux(sessiontest.New(), token, reg)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s; metrics at /metrics\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// newMux serves the seen and status endpoints from fake's "demo" session,
// observed into reg, and reg's metrics at /metrics.
func newMux(fake *sessiontest.Fake, token string, reg *prometheus.Registry) (*http.ServeMux, error) {
	obs := newObserver(reg)
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}})
	if err != nil {
		return nil, err
	}
	sessions := fake.Registry("demo")
	h, err := seenhandler.New(sessions, seenhandler.WithAuth(auth), seenhandler.WithObserver(obs),
		seenhandler.WithAsync(seenhandler.AsyncOptions{})) // "async": true queues, feeding the queue gauge
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h) // the seen and the status endpoints
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux, nil
}

// observer exports seenhandler's observations as Prometheus metrics.
type observer struct {
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
	_ seenhandler.QueueObserver = (*observer)(nil)
	_ seenhandler.ViewObserver  = (*observer)(nil)
)

func newObserver(reg prometheus.Registerer) *observer {
	o := &observer{
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
	reg.MustRegister(o.requests, o.duration, o.receipts, o.messages, o.skipped, o.backendErrors, o.queue, o.timeToView)
	return o
}

// RequestDone implements seenhandler.Observer.
func (o *observer) RequestDone(_ context.Context, r seenhandler.RequestInfo) {
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
func (o *observer) BackendError(_ context.Context, e seenhandler.BackendErrorInfo) {
	o.backendErrors.WithLabelValues(e.Session, string(e.Op), e.Code).Inc()
}

// MessageViewed implements seenhandler.ViewObserver.
func (o *observer) MessageViewed(_ context.Context, v seenhandler.ViewInfo) {
	o.timeToView.WithLabelValues(v.Session, strconv.FormatBool(v.Auto)).Observe(v.TimeToView.Seconds())
}

// QueueDepth implements seenhandler.QueueObserver.
func (o *observer) QueueDepth(_ context.Context, depth int) {
	o.queue.Set(float64(depth))
}
