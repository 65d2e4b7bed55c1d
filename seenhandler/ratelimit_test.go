package seenhandler_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/ratelimit"
)

func TestSessionRateLimit(t *testing.T) {
	lim, err := ratelimit.NewMemory(0.5, 2) // 2 at once, then one per 2 s
	if err != nil {
		t.Fatal(err)
	}
	h, fake := newHandler(t, seenhandler.WithRateLimit(lim, nil))
	body := func(session string) string {
		return `{"session":"` + session + `","chatId":"15551234567","messageIds":["A1"]}`
	}
	for i, want := range []int{201, 201, 429} {
		w := request{body: body("demo")}.do(t, h)
		if w.Code != want {
			t.Fatalf("request %d: status %d, want %d; body %s", i, w.Code, want, w.Body)
		}
		if want == 429 {
			got := decode[seenhandler.ErrorResponse](t, w)
			after, _ := strconv.Atoi(w.Header().Get("Retry-After"))
			if got.Error.Code != "rate_limited" || after < 1 || after > 2 {
				t.Errorf("429: %+v, Retry-After %q", got, w.Header().Get("Retry-After"))
			}
		}
	}
	// Another session has its own bucket, whatever the token.
	if w := (request{body: body("other")}).do(t, h); w.Code != http.StatusCreated {
		t.Errorf("other session: %d", w.Code)
	}
	if n := len(fake.Receipts()); n != 3 {
		t.Errorf("sent %d, want 3 (nothing for the limited request)", n)
	}
}

func TestTokenRateLimit(t *testing.T) {
	lim, err := ratelimit.NewMemory(0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHandler(t, seenhandler.WithRateLimit(nil, lim))
	body := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	if w := (request{body: body}).do(t, h); w.Code != http.StatusCreated {
		t.Fatalf("first: %d", w.Code)
	}
	if w := (request{body: body}).do(t, h); w.Code != 429 {
		t.Errorf("second, same token: %d", w.Code)
	}
	// Another token (also allowed on demo) is not limited by the first's.
	if w := (request{body: body, header: map[string]string{"Authorization": "Bearer " + demoToken}}).do(t, h); w.Code != http.StatusCreated {
		t.Errorf("other token: %d", w.Code)
	}
	// A bad token is refused before the limiter counts it.
	if w := (request{body: body, header: map[string]string{"Authorization": "Bearer nope"}}).do(t, h); w.Code != 401 {
		t.Errorf("bad token: %d", w.Code)
	}
}

func TestRateLimiterKeysAndFailures(t *testing.T) {
	var keys []string
	failing := ratelimit.Func(func(_ context.Context, key string) (seenhandler.Reservation, error) {
		keys = append(keys, key)
		return seenhandler.Reservation{}, errors.New("redis down")
	})
	h, fake := newHandler(t, seenhandler.WithRateLimit(failing, failing))
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}.do(t, h)
	if w.Code != http.StatusCreated || len(fake.Receipts()) != 1 {
		t.Errorf("a failing limiter must let the request through: %d", w.Code)
	}
	if len(keys) != 2 || keys[1] != "session:demo" || len(keys[0]) < 10 || keys[0] == "token:"+token {
		t.Errorf("keys %q: want a token digest, then the session", keys)
	}
}

func TestMemoryLimiter(t *testing.T) {
	if _, err := ratelimit.NewMemory(0, 1); err == nil {
		t.Error("zero rate accepted")
	}
	if _, err := ratelimit.NewMemory(1, 0); err == nil {
		t.Error("zero burst accepted")
	}
	ctx := context.Background()
	lim, _ := ratelimit.NewMemory(0.001, 1) // one, then one every 1000 s
	if r, _ := lim.Reserve(ctx, "busy"); !r.OK {
		t.Fatal("first request refused")
	}
	if r, _ := lim.Reserve(ctx, "busy"); r.OK || r.RetryAfter < 900*time.Second {
		t.Errorf("second request: %+v", r)
	}
	// A reservation given back restores the budget.
	if r, _ := lim.Reserve(ctx, "refund"); !r.OK || r.Cancel == nil {
		t.Fatalf("first of another key: %+v", r)
	} else {
		r.Cancel()
	}
	if r, _ := lim.Reserve(ctx, "refund"); !r.OK {
		t.Error("a cancelled reservation was not given back")
	}
	// Many more keys than it tracks: memory stays bounded, a recently used
	// key keeps its bucket, and the least recently used ones start afresh.
	for i := range ratelimit.DefaultKeys * 2 {
		key := strconv.Itoa(i)
		if r, _ := lim.Reserve(ctx, key); !r.OK {
			t.Fatalf("key %s refused", key)
		}
		if i%1000 == 0 {
			if r, _ := lim.Reserve(ctx, "busy"); r.OK {
				t.Fatalf("busy key allowed again after %d other keys", i)
			}
		}
	}
	if r, _ := lim.Reserve(ctx, "0"); !r.OK {
		t.Error("the least recently used key was not forgotten")
	}
}

// Polling a session's status, on either status path, spends neither the
// session's receipt budget nor its token's: the receipts still go out.
func TestStatusPollsSpendNoReceiptBudget(t *testing.T) {
	sessionLim, err := ratelimit.NewMemory(0.001, 2)
	if err != nil {
		t.Fatal(err)
	}
	tokenLim, err := ratelimit.NewMemory(0.001, 25) // exactly the polls
	if err != nil {
		t.Fatal(err)
	}
	h, fake := newHandler(t, seenhandler.WithRateLimit(sessionLim, tokenLim))
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	for i := range 25 {
		path := seenhandler.PathWawpStatus + "?session=demo"
		if i%2 == 1 {
			path = "/api/sessions/demo"
		}
		if w := (request{method: http.MethodGet, path: path}).do(t, mux); w.Code != http.StatusOK {
			t.Fatalf("status poll %d: %d %s", i, w.Code, w.Body)
		}
	}
	for i := range 2 {
		w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["R` + strconv.Itoa(i) + `"]}`}.do(t, mux)
		if w.Code != http.StatusCreated {
			t.Errorf("receipt %d after 25 status polls: %d %s", i, w.Code, w.Body)
		}
	}
	if n := len(fake.Receipts()); n != 2 {
		t.Errorf("sent %d receipts, want 2", n)
	}
	// The session's budget is the receipts': spent, the next one waits.
	if w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["R2"]}`}).do(t, mux); w.Code != http.StatusTooManyRequests {
		t.Errorf("third receipt: %d, want 429", w.Code)
	}
}

// A Limiter holding a nil pointer or func — a *ratelimit.Memory left nil
// when no rate was configured — sets no limit, as a nil Limiter does,
// instead of failing every request with a panic (500).
func TestRateLimitNilInALimiter(t *testing.T) {
	var mem *ratelimit.Memory
	var fn ratelimit.Func
	h, _ := newHandler(t, seenhandler.WithRateLimit(mem, fn))
	for i := range 3 {
		if w := (request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}).do(t, h); w.Code != http.StatusCreated {
			t.Fatalf("request %d: status %d, body %s", i, w.Code, w.Body)
		}
	}
}
