// Command prometheus serves the bluetick endpoints (demo backend) with
// Prometheus metrics at GET /metrics, exported by package
// seenhandler/promobserver (an observer an app imports):
//
//	go run ./examples/prometheus   # token demo-token, session demo, 127.0.0.1:8080
//	curl -s 127.0.0.1:8080/metrics | grep bluetick_
//
// The metrics:
//
//	bluetick_requests_total{endpoint,dialect,session,code}       requests answered ("ok" for 200)
//	bluetick_request_duration_seconds{endpoint,dialect}          latency histogram
//	bluetick_receipts_sent_total{session}                        receipts (backend calls) sent
//	bluetick_messages_sent_total{session}                        message ids they carried
//	bluetick_messages_skipped_total{session}                     ids skipped (own messages)
//	bluetick_backend_errors_total{session,op,code}               backend failures
//	bluetick_async_queue_depth                                   asynchronous receipts waiting
//
// Session names are labels: keep their number bounded (they are your
// WhatsApp accounts). The core library links no metrics library:
// promobserver does.
package main
