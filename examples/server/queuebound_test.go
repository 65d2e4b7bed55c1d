package main

// The asynchronous queue under hostile load: its bounds come from the queue
// itself (no drift between processes sharing it), hold per session and per
// token (one tenant cannot fill it for the others), and the sessions take
// turns (one session's backlog does not delay another's receipts).

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
)

const groupChat = "120363012345678901@g.us"

// groupBody is a request for session name marking 100 messages of a group
// read, each from its own sender: 100 receipts, queued.
func groupBody(name, prefix string) string {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"false_%s_%s%03d_1555%07d@c.us"`, groupChat, prefix, i, i)
	}
	return `{"session":"` + name + `","chatId":"` + groupChat + `","messageIds":[` + strings.Join(ids, ",") + `],"async":true}`
}

// fillQueue posts 100-receipt requests for sessions (in turn) with token
// until the first refusal, at most max requests, and returns how many were
// accepted and the refusal's status and body.
func fillQueue(t *testing.T, base, token string, sessions []string, max int) (accepted, status int, body []byte) {
	t.Helper()
	for i := range max {
		req, _ := http.NewRequest(http.MethodPost, base+seenhandler.PathWasend,
			strings.NewReader(groupBody(sessions[i%len(sessions)], fmt.Sprint("F", i, "x"))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		status, body = do(t, req)
		if status != http.StatusAccepted {
			return accepted, status, body
		}
		accepted++
	}
	return accepted, 0, nil
}

// errorCode is the error code of an error answer.
func errorCode(body []byte) (code seenhandler.Code, message string) {
	var e struct {
		Error struct {
			Code    seenhandler.Code
			Message string
		}
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code, e.Error.Message
}

// Tenant A, within any rate limit, queues 100-receipt requests for its own
// sessions, which are down, until it is refused: the per-session and
// per-token bounds stop it before it fills the queue, and tenant B's
// request for its healthy session is accepted.
func TestQueueBoundPerTenant(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("tok-a: a1,a2,a3\ntok-b: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, nil, "-sessions", "a1,a2,a3,b", "-offline", "a1,a2,a3", "-tokens", file,
		"-async", "-async-min", "1h", "-async-max", "1h")
	// The queue holds 10,000 receipts: A could fill it with 100 requests.
	accepted, status, body := fillQueue(t, s.url, "tok-a", []string{"a1", "a2", "a3"}, 100)
	code, message := errorCode(body)
	t.Logf("tenant A: %d requests (%d receipts) accepted, then %d %s: %s", accepted, accepted*100, status, code, message)
	if status != http.StatusServiceUnavailable || code != seenhandler.CodeQueueFull || !strings.Contains(message, "token") {
		t.Errorf("tenant A was refused with %d %s after %d requests, want 503 queue_full for its token", status, body, accepted)
	}
	if accepted*100 > 5000 {
		t.Errorf("tenant A queued %d receipts, above its token's bound %d", accepted*100, 5000)
	}
	// One session alone stops at its own bound.
	one := start(t, nil, "-sessions", "a1,b", "-offline", "a1", "-tokens", file, "-async", "-async-min", "1h", "-async-max", "1h")
	accepted, status, body = fillQueue(t, one.url, "tok-a", []string{"a1"}, 100)
	code, message = errorCode(body)
	if status != http.StatusServiceUnavailable || code != seenhandler.CodeQueueFull || !strings.Contains(message, "session") ||
		accepted*100 != 2500 {
		t.Errorf("one session: refused with %d %s after %d requests, want 503 queue_full for the session after %d",
			status, body, accepted, 2500/100)
	}

	for _, srv := range []*server{s, one} {
		status, body = srv.post(t, seenhandler.PathWasend, `{"session":"b","to":"15551234567","messageId":"B1","async":true}`,
			"Authorization", "Bearer tok-b")
		if status != http.StatusAccepted {
			t.Errorf("tenant B, while A's receipts wait: %d %s, want 202", status, body)
		}
	}
}

// Session a has 300 receipts queued, due before session b's one; the
// worker sends each session's jobs Pace (100 ms) apart: b's receipt goes
// out at once, not 30 s later behind a's backlog. (The queue is kept in a
// file, so that the stop keeps a's backlog instead of sending it.)
func TestQueueFairAcrossSessions(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	s := start(t, nil, "-sessions", "a,b", "-async", "-db", db, "-async-min", "1ms", "-async-max", "5ms")
	postAsync(t, s.url, "a", "A", 300)
	queued := time.Now()
	status, body := s.post(t, seenhandler.PathWasend, `{"session":"b","to":"15551234567","messageId":"B1"}`,
		"Authorization", "Bearer "+demoToken)
	if status != http.StatusAccepted {
		t.Fatalf("b: %d %s", status, body)
	}
	deadline := queued.Add(10 * time.Second)
	for queueOf(t, s.url, "b").Sent != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("b's receipt not sent 10 s after it was queued; a's queue: %+v", queueOf(t, s.url, "a"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	waited := time.Since(queued)
	a := queueOf(t, s.url, "a")
	t.Logf("b's receipt went out %v after it was queued; a had %d of 300 pending", waited.Round(time.Millisecond), a.Pending)
	if a.Pending == 0 {
		t.Errorf("a's backlog was all sent before b's receipt (%v): b waited behind it", waited)
	}
}

// Two processes share a durable queue (demo mode on PostgreSQL): the first
// accepts until it is full; the second sends everything; the first then
// accepts again — its bound comes from the queue, not from what it has
// accepted and settled itself.
func TestQueueBoundSharedQueue(t *testing.T) {
	dsn := postgresDB(t)
	first := start(t, nil, "-async", "-db", dsn, "-node-id", "first", "-async-min", "1h", "-async-max", "1h")
	accepted, status, body := fillQueue(t, first.url, demoToken, []string{"demo"}, 101)
	if code, _ := errorCode(body); status != http.StatusServiceUnavailable || code != seenhandler.CodeQueueFull {
		t.Fatalf("the first process accepted %d requests, then %d %s; want 503 queue_full", accepted, status, body)
	}
	second := start(t, nil, "-async", "-db", dsn, "-node-id", "second", "-async-min", "1ms", "-async-max", "5ms", "-async-pace", "1ms")
	q := waitQueue(t, second.url, "demo", func(q seenhandler.QueueStatus) bool { return q.Pending == 0 })
	t.Logf("%d receipts accepted by the first process, sent by the second: %+v", accepted*100, q)
	status, body = first.post(t, seenhandler.PathWasend, groupBody("demo", "again"), "Authorization", "Bearer "+demoToken)
	if status != http.StatusAccepted {
		t.Errorf("the first process, the queue empty: %d %s, want 202", status, body)
	}
}

// Demo mode keeping its queue on PostgreSQL, killed (kill -9) while it
// holds claimed jobs: started again on the same host, it takes its claims
// back at once and sends them, instead of waiting for the claims' lease
// (5 minutes) — its name in the claims is the host name, not a new random
// one each start.
func TestDemoPostgresRestartTakesClaimsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server as a process")
	}
	dsn := postgresDB(t)
	const n = 10
	// One job goes out, then the next waits an hour: the rest of the
	// session's lane stays claimed.
	first := startProc(t, "-demo", "-async", "-v", "-db", dsn, "-async-min", "1ms", "-async-max", "1ms", "-async-pace", "1h")
	postAsync(t, first.url, "demo", "P", n)
	deadline := time.Now().Add(20 * time.Second)
	for len(sentIDs(t, first.stdout.String())) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing sent; stderr:\n%s", first.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.signal(t, syscall.SIGKILL)

	second := startProc(t, "-demo", "-async", "-v", "-db", dsn, "-async-min", "1ms", "-async-max", "1ms", "-async-pace", "1ms")
	started := time.Now()
	for q := queueOf(t, second.url, "demo"); q.Pending > 0; q = queueOf(t, second.url, "demo") {
		if time.Since(started) > 20*time.Second {
			t.Fatalf("after the restart, %+v 20 s later: the killed process's claims still hold jobs", q)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("every receipt sent %v after the restart", time.Since(started).Round(time.Millisecond))
	sent := sentIDs(t, first.stdout.String())
	for id, c := range sentIDs(t, second.stdout.String()) {
		sent[id] += c
	}
	for i := range n {
		if sent[fmt.Sprint("P", i)] == 0 {
			t.Errorf("P%d never sent", i)
		}
	}
}

// Real mode on a Postgres store (a cluster of one node): a receipt queued
// for a session that is down waits for it; the session's device then
// leaves the store (a logout): the receipt fails at once as
// session_not_found, as on a single process, instead of waiting,
// unclaimed and counted, for an owner that never comes.
func TestClusterOrphanedJobsFail(t *testing.T) {
	dsn := postgresDB(t)
	const name = "15550000001"
	storeDeviceIn(t, "postgres", dsn, name)
	s := startReal(t, map[string]string{tokenEnv: "s3cret"}, "-db", dsn, "-node-id", "node-1", "-session-rate", "0",
		"-async", "-async-min", "1ms", "-async-max", "1ms")
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/api/sessions/"+name, nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		if status, body := do(t, req); status == http.StatusOK && strings.Contains(string(body), `"node-1"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-1 does not hold %s; stderr:\n%s", name, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	status, body := s.post(t, seenhandler.PathWAHA, `{"session":"`+name+`","chatId":"15551234567","messageIds":["GONE1"],"async":true}`,
		"Authorization", "Bearer s3cret")
	if status != http.StatusCreated || !strings.Contains(string(body), `"queued":{"reason"`) {
		t.Fatalf("queueing for the session that is down: %d %s", status, body)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM whatsmeow_device WHERE jid LIKE $1`, name+"%"); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	for !strings.Contains(s.stderr.String(), "reason="+string(seenhandler.CodeSessionNotFound)) {
		if time.Since(left) > 60*time.Second {
			t.Fatalf("the receipt did not fail within a minute of the device leaving; stderr:\n%s", s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the queued receipt failed %v after the device left the store", time.Since(left).Round(time.Millisecond))
	if out := s.stop(t); !strings.Contains(out, "1 accepted, 0 sent, 1 failed, 0 pending") {
		t.Errorf("stderr:\n%s", out)
	}
}
