package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

const (
	token  = "t0ken"
	user   = "15551234567@s.whatsapp.net"
	sender = "15557654321@s.whatsapp.net"
	group  = "120363012345678901@g.us"
)

// start returns a handler over reg whose Later is a Worker of o, started,
// both shut down (in the documented order) when the test ends.
func start(t *testing.T, reg session.Registry, o queue.Options, opts ...seenhandler.Option) (*seenhandler.Handler, *queue.Worker) {
	t.Helper()
	w, err := queue.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(reg, append([]seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithLater(w)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(h)
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = w.Shutdown(context.Background())
	})
	return h, w
}

// startFake is start over a sessiontest fake with the sessions "demo" and
// "other".
func startFake(t *testing.T, o queue.Options, opts ...seenhandler.Option) (*seenhandler.Handler, *queue.Worker, *sessiontest.Fake) {
	t.Helper()
	fake := sessiontest.New()
	h, w := start(t, fake.Registry("demo", "other"), o, opts...)
	return h, w, fake
}

// totals is the sum of a Worker's counts over its sessions.
type totals struct{ Accepted, Sent, Failed, Pending int64 }

func totalsOf(t *testing.T, w *queue.Worker) totals {
	t.Helper()
	sessions, err := w.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sum := queue.Total(sessions)
	return totals{Accepted: sum.Sent + sum.Failed + sum.Pending, Sent: sum.Sent, Failed: sum.Failed, Pending: sum.Pending}
}

// post sends body to the handler's Wawp path and returns the answer.
func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, seenhandler.PathWawp, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
	return v
}

// syncBuffer is a bytes.Buffer safe for the worker to write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// seenAnswer, errorAnswer and statusAnswer are the handler's answers as
// these tests read them (the OpenAPI document is their contract): every
// member is named, so that decode, which refuses unknown ones, still
// catches a member the answer should not have.
type (
	seenAnswer struct {
		Success, Acknowledged, Accepted bool
		Session, ChatID                 string
		ChatRead, Typing, Reason        string
		ChatMarkedRead                  *bool
		Receipts, Skipped, InFlight     json.RawMessage
		Queued                          *struct {
			Reason     seenhandler.Code
			Message    string
			RetryUntil time.Time
		}
	}
	errorAnswer struct {
		Success bool
		Message string
		Error   struct {
			Code        seenhandler.Code
			Message     string
			Fields      json.RawMessage
			FieldsTotal int
		}
		Receipts json.RawMessage
	}
	statusAnswer struct {
		Success, Connected, LoggedIn bool
		Session, Status, JID, Node   string
		Queue                        *seenhandler.QueueStatus
	}
)

// serveStatus serves r with h's status endpoint, the handler [seenhandler.Routes]
// lists at seenhandler.PathWawpStatus (the same serves WAHA's path).
func serveStatus(h *seenhandler.Handler, w http.ResponseWriter, r *http.Request) {
	for _, rt := range seenhandler.Routes(h) {
		if rt.Pattern == seenhandler.PathWawpStatus {
			rt.Handler.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "no status route", http.StatusInternalServerError)
}
