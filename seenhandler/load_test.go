package seenhandler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// loadCase is one kind of request of TestLoad, with the answer it must get.
type loadCase struct {
	name     string
	method   string // default POST
	path     string
	header   map[string]string
	body     string
	status   int
	code     seenhandler.Code // the error code, for statuses other than 200 and 201
	receipts int              // receipts in a 200 or 201 answer, each one call to the fake
}

const loadToken = "load-token"

var loadCases = []loadCase{
	{name: "wasend", path: seenhandler.PathWasend,
		header: map[string]string{"Authorization": "Bearer " + loadToken},
		body:   `{"session":"demo","to":"+1 (555) 123-4567","messageId":"3EB0C767D26A1D98A4"}`,
		status: http.StatusOK, receipts: 1},
	{name: "wawp group", path: seenhandler.PathWawp,
		body:   `{"instance_id":"demo","access_token":"` + loadToken + `","chatId":"120363012345678901@g.us","messageIds":["3EB0AA","3EB0BB"],"participant":"15557654321@c.us"}`,
		status: http.StatusOK, receipts: 1},
	{name: "waha serialized", path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": loadToken},
		body:   `{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0AA","true_15551234567@c.us_3EB0BB"]}`,
		status: http.StatusCreated, receipts: 1},
	{name: "waha group, senders in the ids", path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": loadToken},
		body:   `{"session":"demo","messageIds":["false_120363012345678901@g.us_3EB0CC_15557654321@c.us","false_120363012345678901@g.us_3EB0DD_15550001111@c.us"]}`,
		status: http.StatusCreated, receipts: 2},
	{name: "waha all from me", path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": loadToken},
		body:   `{"session":"demo","messageIds":["true_15551234567@c.us_3EB0EE"]}`,
		status: http.StatusCreated, receipts: 0},
	{name: "not json", path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": loadToken},
		body:   `{"session":"demo","chatId":`,
		status: http.StatusBadRequest, code: seenhandler.CodeInvalidJSON},
	{name: "wrong json type", path: seenhandler.PathWawp,
		body:   `{"instance_id":"demo","access_token":"` + loadToken + `","chatId":"15551234567","messageIds":"3EB0"}`,
		status: http.StatusBadRequest, code: seenhandler.CodeInvalidJSON},
	{name: "invalid chat", path: seenhandler.PathWasend,
		header: map[string]string{"Authorization": "Bearer " + loadToken},
		body:   `{"session":"demo","to":"12345@broadcast","messageId":"3EB0"}`,
		status: http.StatusBadRequest, code: seenhandler.CodeValidationFailed},
	{name: "group without participant", path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": loadToken},
		body:   `{"session":"demo","chatId":"120363012345678901@g.us","messageIds":["3EB0FF"]}`,
		status: http.StatusBadRequest, code: seenhandler.CodeValidationFailed},
	{name: "unknown session", path: seenhandler.PathWasend,
		header: map[string]string{"Authorization": "Bearer " + loadToken},
		body:   `{"session":"nope","to":"15551234567","messageId":"3EB0"}`,
		status: http.StatusNotFound, code: seenhandler.CodeSessionNotFound},
	{name: "bad token", path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": "wrong"},
		body:   `{"session":"demo","chatId":"15551234567@c.us","messageIds":["3EB0"]}`,
		status: http.StatusUnauthorized, code: seenhandler.CodeUnauthorized},
	{name: "no token", path: seenhandler.PathWawp,
		body:   `{"instance_id":"demo","chatId":"15551234567@c.us","messageIds":["3EB0"]}`,
		status: http.StatusUnauthorized, code: seenhandler.CodeUnauthorized},
	{name: "failing backend", path: seenhandler.PathWasend,
		header: map[string]string{"Authorization": "Bearer " + loadToken},
		body:   `{"session":"flaky","to":"15551234567","messageId":"3EB0"}`,
		status: http.StatusServiceUnavailable, code: seenhandler.CodeSessionNotConnected},
	{name: "wrong content type", path: seenhandler.PathWasend,
		header: map[string]string{"Authorization": "Bearer " + loadToken, "Content-Type": "text/plain"},
		body:   `{"session":"demo","to":"15551234567","messageId":"3EB0"}`,
		status: http.StatusUnsupportedMediaType, code: seenhandler.CodeUnsupportedMediaType},
	{name: "GET", method: http.MethodGet, path: seenhandler.PathWAHA,
		header: map[string]string{"X-Api-Key": loadToken},
		status: http.StatusMethodNotAllowed, code: seenhandler.CodeMethodNotAllowed},
}

// ok reports whether status is a success: 200, or 201 on WAHA's path.
func ok(status int) bool { return status == http.StatusOK || status == http.StatusCreated }

// loadAnswer is what TestLoad reads of an answer.
type loadAnswer struct {
	Success      bool `json:"success"`
	Acknowledged bool `json:"acknowledged"`
	Receipts     []struct {
		MessageIDs []string `json:"messageIds"`
	} `json:"receipts"`
	Error struct {
		Code seenhandler.Code `json:"code"`
	} `json:"error"`
}

// loadTally counts what the clients saw.
type loadTally struct {
	mu       sync.Mutex
	byCase   []int
	status   map[int]int
	acked    int // 200s and 201s with acknowledged true
	receipts int // receipts in 200 and 201 answers
	failures []string
	failed   int
}

func (lt *loadTally) fail(format string, args ...any) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.failed++
	if len(lt.failures) < 20 {
		lt.failures = append(lt.failures, fmt.Sprintf(format, args...))
	}
}

// TestLoad sends many requests of every kind, from many goroutines, over
// loopback to a Handler on a fake with a healthy session ("demo") and a
// disconnected one ("flaky"). Every answer must be the one expected for its
// request, the fake must have recorded exactly the receipts the 200s and 201s
// report, and no goroutine may outlive the server.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	const (
		clients  = 64
		requests = 20_000
	)
	leaks := goleak.IgnoreCurrent()

	fake := sessiontest.New()
	fake.Inject(sessiontest.Fault{Session: "flaky", Err: session.ErrNotConnected})
	auth, err := seenhandler.NewStaticAuth(map[string][]string{loadToken: {seenhandler.AllSessions}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := seenhandler.New(fake.Registry("demo", "flaky"), seenhandler.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	srv := httptest.NewServer(mux)
	transport := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	// The whole run stops by itself: after requests requests, or when ctx
	// ends.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tally := &loadTally{byCase: make([]int, len(loadCases)), status: make(map[int]int)}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= requests {
					return
				}
				loadOne(ctx, client, srv.URL, int(i%int64(len(loadCases))), tally)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	srv.Close()
	transport.CloseIdleConnections()

	if err := ctx.Err(); err != nil {
		t.Errorf("the run did not finish in time: %v", err)
	}
	sent := 0
	for _, n := range tally.byCase {
		sent += n
	}
	t.Logf("%d requests from %d clients in %v (%.0f/s); statuses %v", sent, clients, took.Round(time.Millisecond),
		float64(sent)/took.Seconds(), tally.status)
	if sent != requests {
		t.Errorf("%d requests answered, want %d", sent, requests)
	}
	if tally.failed > 0 {
		t.Errorf("%d answers were not the ones expected; the first ones:\n%s", tally.failed, strings.Join(tally.failures, "\n"))
	}
	for i, c := range loadCases {
		if tally.byCase[i] == 0 {
			t.Errorf("case %q never ran", c.name)
		}
	}

	// The fake recorded exactly what the 200s and 201s say was sent, and one failed
	// call per 503.
	var ok, failed int
	for _, c := range fake.Calls() {
		switch {
		case c.Err == nil && c.Session == "demo":
			ok++
		case c.Session == "flaky" && errors.Is(c.Err, session.ErrNotConnected):
			failed++
		default:
			t.Errorf("unexpected call to the fake: %+v", c)
		}
	}
	wantReceipts, wantAcked := 0, 0
	for i, c := range loadCases {
		wantReceipts += tally.byCase[i] * c.receipts
		if c.receipts > 0 {
			wantAcked += tally.byCase[i]
		}
	}
	if got := len(fake.Receipts()); got != ok || got != tally.receipts || got != wantReceipts {
		t.Errorf("the fake recorded %d receipts (%d successful calls); the 200 and 201 answers report %d, want %d",
			got, ok, tally.receipts, wantReceipts)
	}
	if tally.acked != wantAcked {
		t.Errorf("%d answers were 200 or 201 with acknowledged true, want %d", tally.acked, wantAcked)
	}
	if failed != tally.status[http.StatusServiceUnavailable] {
		t.Errorf("the fake failed %d calls; the clients got %d 503s", failed, tally.status[http.StatusServiceUnavailable])
	}

	goleak.VerifyNone(t, leaks)
}

// loadOne sends request i of case ci and checks its answer.
func loadOne(ctx context.Context, client *http.Client, base string, ci int, tally *loadTally) {
	c := loadCases[ci]
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+c.path, body)
	if err != nil {
		tally.fail("%s: %v", c.name, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		tally.fail("%s: %v", c.name, err)
		return
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tally.fail("%s: reading the answer: %v", c.name, err)
		return
	}

	tally.mu.Lock()
	tally.byCase[ci]++
	tally.status[resp.StatusCode]++
	tally.mu.Unlock()

	var a loadAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		tally.fail("%s: status %d, answer %q is not JSON: %v", c.name, resp.StatusCode, raw, err)
		return
	}
	receipts := 0
	for _, rc := range a.Receipts {
		if len(rc.MessageIDs) > 0 {
			receipts++
		}
	}
	switch {
	case resp.StatusCode != c.status:
		tally.fail("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, raw)
	case ok(c.status) && (!a.Success || a.Acknowledged != (c.receipts > 0) || receipts != c.receipts):
		tally.fail("%s: answer %s, want success, %d receipts", c.name, raw, c.receipts)
	case !ok(c.status) && (a.Success || a.Error.Code != c.code):
		tally.fail("%s: answer %s, want code %s", c.name, raw, c.code)
	case c.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "":
		tally.fail("%s: 503 without Retry-After", c.name)
	}
	if ok(resp.StatusCode) {
		tally.mu.Lock()
		if a.Acknowledged {
			tally.acked++
		}
		tally.receipts += receipts
		tally.mu.Unlock()
	}
}
