package promobserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/promobserver"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// The observer counts what a handler answers, as an app imports it; a
// second one on the same registry is an error, not a panic.
func TestObserver(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, _, err := promobserver.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(sessiontest.New().Registry("demo"), seenhandler.WithNoAuth(), seenhandler.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWasend, strings.NewReader(`{"session":"demo","to":"15551234567","messageId":"A1"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := `
# HELP bluetick_receipts_sent_total Receipts (backend calls) sent.
# TYPE bluetick_receipts_sent_total counter
bluetick_receipts_sent_total{session="demo"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bluetick_receipts_sent_total"); err != nil {
		t.Error(err)
	}
	if _, _, err := promobserver.New(reg); err == nil {
		t.Error("a second observer on the same registry: no error")
	}
}
