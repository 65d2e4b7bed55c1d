package seenhandler_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
)

// "typing": true and Meta's "typing_indicator" show typing after the
// receipts, for the handler's typing timeout, and the answer says so.
func TestTyping(t *testing.T) {
	tests := []struct {
		name, extra string
		opts        []seenhandler.Option
		setErr      error
		want        seenhandler.Typing // the answer's typing
		wantD       time.Duration
	}{
		{"typing", `"typing":true`, nil, nil, "started", 25 * time.Second},
		{"meta", `"typing_indicator":{"type":"text"}`, nil, nil, "started", 25 * time.Second},
		{"both", `"typing":true,"typing_indicator":{"type":"text"}`, nil, nil, "started", 25 * time.Second},
		{"timeout", `"typing":true`, []seenhandler.Option{seenhandler.WithTypingTimeout(5 * time.Second)}, nil, "started", 5 * time.Second},
		{"unsupported", `"typing":true`, nil, errors.ErrUnsupported, "unavailable", 25 * time.Second},
		{"failing", `"typing":true`, nil, errors.New("socket closed"), "unavailable", 25 * time.Second},
		{"not asked", `"typing":false`, nil, nil, "", 0},
		{"null", `"typing":null,"typing_indicator":null`, nil, nil, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var backendErrs []seenhandler.Op
			obs := seenhandler.Observer{BackendError: func(_ context.Context, e seenhandler.BackendErrorInfo) { backendErrs = append(backendErrs, e.Op) }}
			h, fake := newHandler(t, append(tc.opts, seenhandler.WithObserver(obs))...)
			fake.SetTypingError(tc.setErr)
			w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["T1"],` + tc.extra + `}`}.do(t, h)
			if w.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := decode[seenhandler.Response](t, w); got.Typing != tc.want {
				t.Errorf("typing %q, want %q", got.Typing, tc.want)
			}
			calls := fake.Typings()
			if tc.wantD == 0 {
				if len(calls) != 0 {
					t.Errorf("typing calls %+v, want none", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0].Chat != user || calls[0].D != tc.wantD || calls[0].Session != "demo" {
				t.Errorf("typing calls %+v, want one for %s, %v", calls, user, tc.wantD)
			}
			if wantObs := tc.setErr != nil && !errors.Is(tc.setErr, errors.ErrUnsupported); wantObs != (len(backendErrs) == 1 && backendErrs[0] == seenhandler.OpTyping) {
				t.Errorf("backend errors observed %v", backendErrs)
			}
			// Typing comes after the receipt.
			if n := len(fake.Receipts()); n != 1 {
				t.Errorf("%d receipts", n)
			}
		})
	}
}

func TestTypingValidation(t *testing.T) {
	h, fake := newHandler(t)
	for _, tc := range []struct{ extra, field, rule string }{
		{`"typing_indicator":{"type":"audio"}`, "typing_indicator.type", "oneof"},
		{`"typing_indicator":{}`, "typing_indicator.type", "required"},
		{`"typing_indicator":{"TYPE":"text"}`, "typing_indicator.type", "required"},
		{`"typing":false,"typing_indicator":{"type":"text"}`, "typing", "conflict"},
	} {
		w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["T1"],` + tc.extra + `}`}.do(t, h)
		got := w.Body.String()
		if w.Code != http.StatusBadRequest || !strings.Contains(got, `"field":"`+tc.field+`"`) || !strings.Contains(got, `"rule":"`+tc.rule+`"`) {
			t.Errorf("%s: status %d, body %s; want 400 on %s (%s)", tc.extra, w.Code, got, tc.field, tc.rule)
		}
	}
	for _, tc := range []struct{ extra, want string }{
		{`"typing":"yes"`, "typing must be a boolean, not string"},
		{`"typing_indicator":"text"`, "typing_indicator must be an object, not string"},
		{`"typing_indicator":{"type":1}`, "typing_indicator.type must be a string, not number"},
	} {
		w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["T1"],` + tc.extra + `}`}.do(t, h)
		if got := w.Body.String(); w.Code != http.StatusBadRequest || !strings.Contains(got, tc.want) {
			t.Errorf("%s: status %d, body %s; want 400 %q", tc.extra, w.Code, got, tc.want)
		}
	}
	if n := len(fake.Typings()) + len(fake.Receipts()); n != 0 {
		t.Errorf("%d calls for refused requests", n)
	}
}

// An asynchronous request answers typing "scheduled"; the worker shows
// typing once the queued receipts went out, not before.
func TestTypingAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fake, _ := newAsyncHandler(t, queue.Options{MinDelay: time.Second, MaxDelay: time.Second})
		w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["T1"],"async":true,"typing_indicator":{"type":"text"}}`}.do(t, h)
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if got := decode[seenhandler.Response](t, w); got.Typing != seenhandler.TypingScheduled {
			t.Errorf("typing %q, want scheduled", got.Typing)
		}
		synctest.Wait()
		if n := len(fake.Typings()); n != 0 {
			t.Errorf("%d typing calls before the delay", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		calls := fake.Typings()
		if len(calls) != 1 || calls[0].Chat != user || len(fake.Receipts()) != 1 {
			t.Errorf("after the delay: typing %+v, receipts %v", calls, fake.Receipts())
		}
	})
}
