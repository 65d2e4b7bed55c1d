package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/promobserver"
	"github.com/bluetick/bluetick/seenhandler/queue"
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
	obs, queueDepth, err := promobserver.New(reg)
	if err != nil {
		return nil, err
	}
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}})
	if err != nil {
		return nil, err
	}
	sessions := fake.Registry("demo")
	// "async": true queues, feeding the queue gauge. The worker runs as
	// long as the process: this example never shuts down.
	worker, err := queue.New(queue.Options{Observer: obs, QueueDepth: queueDepth})
	if err != nil {
		return nil, err
	}
	h, err := seenhandler.New(sessions, seenhandler.WithAuth(auth), seenhandler.WithObserver(obs), seenhandler.WithLater(worker))
	if err != nil {
		return nil, err
	}
	worker.Start(h)
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h) // the seen and the status endpoints
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux, nil
}
