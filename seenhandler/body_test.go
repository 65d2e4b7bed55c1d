package seenhandler_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
)

// levels is a slog.Handler that records the level of each message.
type levels struct {
	mu   sync.Mutex
	recs map[string]slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levels) WithGroup(string) slog.Handler            { return l }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recs == nil {
		l.recs = map[string]slog.Level{}
	}
	if old, ok := l.recs[r.Message]; !ok || r.Level > old {
		l.recs[r.Message] = r.Level
	}
	return nil
}

// cutReader yields part of a body, then fails with err, as a connection
// closed (or timed out) mid-body does.
type cutReader struct {
	part io.Reader
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if n, err := c.part.Read(p); err != io.EOF {
		return n, err
	}
	return 0, c.err
}

// A cut-off or too-slow body is the client's error (400 or
// 408, logged at Debug), not 500 internal at Warn.
func TestCutOffAndSlowBodies(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   seenhandler.Code
	}{
		{"cut off", io.ErrUnexpectedEOF, http.StatusBadRequest, seenhandler.CodeInvalidJSON},
		{"read deadline", os.ErrDeadlineExceeded, http.StatusRequestTimeout, seenhandler.CodeRequestTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, logs := &recorder{}, &levels{}
			h, fake := newHandler(t, seenhandler.WithObserver(rec.observer()), seenhandler.WithLogger(slog.New(logs)))
			const part = `{"session":"demo","chatId":"15551234567","messa`
			r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, &cutReader{part: strings.NewReader(part), err: tc.err})
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkContract(t, r, part, w)
			got := decode[seenhandler.ErrorResponse](t, w)
			if w.Code != tc.status || got.Error.Code != tc.code {
				t.Errorf("%d %+v, want %d %s", w.Code, got, tc.status, tc.code)
			}
			if lvl, ok := logs.recs["request failed"]; !ok || lvl != slog.LevelDebug {
				t.Errorf("logged %v, want request failed at Debug", logs.recs)
			}
			reqs, errs := rec.take()
			if len(errs) != 0 || len(reqs) != 1 || reqs[0].Code != tc.code {
				t.Errorf("observer saw %+v and backend errors %+v", reqs, errs)
			}
			if n := len(fake.Calls()); n != 0 {
				t.Errorf("%d calls to the backend", n)
			}
		})
	}
}

// unreadable is a body that records whether anyone read it.
type unreadable struct {
	io.Reader
	read bool
}

func (u *unreadable) Read(p []byte) (int, error) {
	u.read = true
	return u.Reader.Read(p)
}

// An unknown token in a header is refused before the
// body is read; a known one, or one in the body, gets the body read.
func TestUnknownHeaderTokenRefusedBeforeTheBody(t *testing.T) {
	const valid = `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	tests := []struct {
		name     string
		header   map[string]string
		body     string
		status   int
		bodyRead bool
	}{
		{"unknown bearer", map[string]string{"Authorization": "Bearer nope"}, valid, 401, false},
		{"unknown X-Api-Key", map[string]string{"X-Api-Key": "nope"}, valid, 401, false},
		{"known bearer", map[string]string{"Authorization": "Bearer " + token}, valid, 201, true},
		{"token for another session: 403 after the body", map[string]string{"Authorization": "Bearer " + demoToken},
			`{"session":"other","chatId":"15551234567","messageIds":["A1"]}`, 403, true},
		{"token in the body", nil, `{"session":"demo","access_token":"nope","chatId":"15551234567","messageIds":["A1"]}`, 401, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHandler(t)
			body := &unreadable{Reader: strings.NewReader(tc.body)}
			r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, body)
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkContract(t, r, tc.body, w)
			if w.Code != tc.status || body.read != tc.bodyRead {
				t.Errorf("status %d, body read %v; want %d, %v: %s", w.Code, body.read, tc.status, tc.bodyRead, w.Body)
			}
		})
	}
}

// A body over the limit is answered 413, and the server closes the
// connection after the answer (as http.MaxBytesReader has it do) rather
// than read the rest; one at the limit is read and served.
func TestBodyLimitOverHTTP(t *testing.T) {
	const limit = 200
	h, _ := newHandler(t, seenhandler.WithRequestLimits(limit, 0))
	srv := httptest.NewServer(h)
	defer srv.Close()
	valid := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	atLimit := valid[:len(valid)-1] + `,"x":"` + strings.Repeat("x", limit-len(valid)-7) + `"}`
	tests := []struct {
		name   string
		body   string
		status int
		close  bool
	}{
		{"at the limit", atLimit, http.StatusCreated, false},
		{"a byte over", atLimit + " ", http.StatusRequestEntityTooLarge, true},
		{"far over", atLimit + strings.Repeat(" ", 10<<10), http.StatusRequestEntityTooLarge, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.body == atLimit && len(atLimit) != limit {
				t.Fatalf("the body at the limit has %d bytes", len(atLimit))
			}
			r, err := http.NewRequest(http.MethodPost, srv.URL+seenhandler.PathWAHA, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+token)
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Close != tc.close {
				t.Errorf("%d, connection closed %v: %s; want %d, %v", resp.StatusCode, resp.Close, answer, tc.status, tc.close)
			}
			if tc.status == http.StatusRequestEntityTooLarge && !strings.Contains(string(answer), `"the body is larger than 200 bytes"`) {
				t.Errorf("answer %s", answer)
			}
		})
	}
}
