package seenhandler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
)

const benchBody = `{"session":"demo","chatId":"15551234567@c.us","messageIds":["3EB0C767D26A1D98A4","3EB0C767D26A1D98A5"]}`

// baseline is the least a net/http handler does for this request: decode
// the same JSON and answer {"success":true}.
func baseline(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Session    string   `json:"session"`
		ChatID     string   `json:"chatId"`
		MessageIDs []string `json:"messageIds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"success":true}`))
}

// BenchmarkHandler compares the handler (static token auth, validation,
// normalisation, a backend that answers at once) with the baseline, in the
// same run: compare the two lines' ns/op and allocs/op.
//
//	go test -run '^$' -bench Handler -benchmem ./seenhandler/
func BenchmarkHandler(b *testing.B) {
	auth, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}})
	if err != nil {
		b.Fatal(err)
	}
	reg := session.NewMemoryRegistry()
	reg.Set("demo", session.SessionFunc(func(_ context.Context, r session.Receipt) (session.Result, error) {
		return session.Result{Type: r.Type}, nil
	}))
	h, err := seenhandler.New(reg, seenhandler.WithAuth(auth))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"Baseline", http.HandlerFunc(baseline)},
		{"Bluetick", h},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(benchBody))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
