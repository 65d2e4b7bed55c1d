package sqlqueue_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/queuetest"
	"github.com/bluetick/bluetick/seenhandler/queue/sqlqueue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// envTestPostgres holds the DSN of a PostgreSQL server whose role may
// create databases (as in session/whatsmeow's store tests). Unset, the
// PostgreSQL subtests are skipped, unless CI=true.
const envTestPostgres = "BLUETICK_TEST_POSTGRES"

// backend opens fresh databases of one kind.
type backend struct {
	name    string
	dialect sqlqueue.Dialect
	// open opens the test's database again (another process would): every
	// call reaches the same data.
	open func(t *testing.T) *sql.DB
}

// forEachBackend runs f on SQLite and, when configured, PostgreSQL.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bluetick.db")
		f(t, backend{name: "sqlite", dialect: sqlqueue.SQLite, open: func(t *testing.T) *sql.DB {
			return openDB(t, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := newPostgresDB(t)
		f(t, backend{name: "postgres", dialect: sqlqueue.Postgres, open: func(t *testing.T) *sql.DB {
			return openDB(t, "pgx", dsn)
		}})
	})
}

func openDB(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// newPostgresDB creates a database for t on the server of envTestPostgres
// and drops it when t ends.
func newPostgresDB(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(envTestPostgres)
	if admin == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(envTestPostgres + " is not set, and CI=true: the PostgreSQL queue tests must run in CI")
		}
		t.Skip(envTestPostgres + " is not set: PostgreSQL queue tests skipped")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	name := "bluetick_test_" + strings.ToLower(rand.Text())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func newQueue(t *testing.T, db *sql.DB, b backend, o sqlqueue.Options) *sqlqueue.Queue {
	t.Helper()
	q, err := sqlqueue.New(context.Background(), db, b.dialect, o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		queuetest.Run(t, func(t *testing.T) queue.Queue {
			db := b.open(t)
			for _, table := range []string{"bluetick_queue", "bluetick_queue_count", "bluetick_queue_failure"} {
				_, _ = db.Exec("DROP TABLE IF EXISTS " + table) // each subtest starts empty
			}
			return newQueue(t, db, b, sqlqueue.Options{})
		})
	})
}

func TestNewRefuses(t *testing.T) {
	db := openDB(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "x.db"))
	for _, tc := range []struct {
		db      *sql.DB
		dialect sqlqueue.Dialect
		o       sqlqueue.Options
	}{
		{nil, sqlqueue.SQLite, sqlqueue.Options{}},
		{db, "mysql", sqlqueue.Options{}},
		{db, sqlqueue.SQLite, sqlqueue.Options{FailureRetention: -time.Second}},
	} {
		if _, err := sqlqueue.New(context.Background(), tc.db, tc.dialect, tc.o); err == nil {
			t.Errorf("New(%v, %q, %+v) succeeded", tc.db != nil, tc.dialect, tc.o)
		}
	}
}

// A process that died holding claims: on SQLite the next New releases them
// all; on PostgreSQL a node with the same name takes its own back, and
// another node's wait for their lease.
func TestOpenReleasesClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		now := time.Now()
		first := newQueue(t, b.open(t), b, sqlqueue.Options{Node: "a"})
		for i := range 2 {
			j := &queue.Job{Session: "s", Chat: "c", Receipts: []session.Receipt{{Chat: "c", MessageIDs: []string{fmt.Sprint(i)}}}, Accepted: now, Due: now}
			if err := first.Enqueue(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		if jobs, _, err := first.Claim(ctx, queue.Claim{Now: now, Limit: 1, Lease: time.Hour}); err != nil || len(jobs) != 1 {
			t.Fatalf("claim: %d, %v", len(jobs), err)
		}
		other := newQueue(t, b.open(t), b, sqlqueue.Options{Node: "b"})
		otherGets := 1 // the unclaimed one
		if b.dialect == sqlqueue.SQLite {
			otherGets = 2 // one process per file: every claim was released
		}
		jobs, _, err := other.Claim(ctx, queue.Claim{Now: now, Limit: 10, Lease: time.Hour})
		if err != nil || len(jobs) != otherGets {
			t.Fatalf("another node claimed %d (%v), want %d", len(jobs), err, otherGets)
		}
		if b.dialect == sqlqueue.SQLite {
			return
		}
		// Node a restarts and takes its own claim back, not b's.
		again := newQueue(t, b.open(t), b, sqlqueue.Options{Node: "a"})
		if jobs, _, err := again.Claim(ctx, queue.Claim{Now: now, Limit: 10, Lease: time.Hour}); err != nil || len(jobs) != 1 {
			t.Fatalf("restarted node claimed %d (%v), want its own 1", len(jobs), err)
		}
	})
}

// A node that now owns a session (Claim.Local) takes over the due jobs of
// that session another node holds, lease or not — the other node died, or
// let the session go — fairly or not, while its own claims and the jobs of
// sessions it does not own stay as they are; the other node can no longer
// settle what was taken over.
func TestLocalTakesOverClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, perSession := range []int{0, 4} {
			t.Run(fmt.Sprint("PerSession=", perSession), func(t *testing.T) {
				ctx := context.Background()
				db := b.open(t)
				for _, table := range []string{"bluetick_queue", "bluetick_queue_count", "bluetick_queue_failure"} {
					if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
						t.Fatal(err)
					}
				}
				dead := newQueue(t, db, b, sqlqueue.Options{Node: "dead"})
				survivor := newQueue(t, b.open(t), b, sqlqueue.Options{Node: "survivor"})
				t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
				var mine, theirs []int64
				for i := range 4 {
					for _, name := range []string{"moved", "kept"} {
						j := &queue.Job{Session: name, Chat: "c", Receipts: []session.Receipt{{Chat: "c", MessageIDs: []string{fmt.Sprint(name, i)}}},
							Accepted: t0, Due: t0.Add(time.Duration(i) * time.Millisecond)}
						if err := dead.Enqueue(ctx, j); err != nil {
							t.Fatal(err)
						}
						if name == "moved" {
							mine = append(mine, j.ID)
						} else {
							theirs = append(theirs, j.ID)
						}
					}
				}
				held, _, err := dead.Claim(ctx, queue.Claim{Now: t0.Add(time.Second), Limit: 100, Lease: 5 * time.Minute})
				if err != nil || len(held) != 8 {
					t.Fatalf("the first node claimed %d jobs (%v), want 8", len(held), err)
				}
				// A minute later, the survivor owns "moved".
				c := queue.Claim{Now: t0.Add(time.Minute), Limit: 100, Lease: 5 * time.Minute, PerSession: perSession,
					Local: func(s string) bool { return s == "moved" }}
				if jobs, _, err := survivor.Claim(ctx, queue.Claim{Now: c.Now, Limit: 100, Lease: time.Minute}); err != nil || len(jobs) != 0 {
					t.Fatalf("without Local, the survivor claimed %d jobs (%v) under the first node's lease", len(jobs), err)
				}
				jobs, _, err := survivor.Claim(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				want := mine
				if perSession > 0 {
					want = mine[:perSession]
				}
				if got := jobIDs(jobs); !slices.Equal(got, want) {
					t.Errorf("the survivor took over %v, want %v (the moved session's, not %v)", got, want, theirs)
				}
				if jobs, _, err := survivor.Claim(ctx, c); err != nil || len(jobs) != 0 {
					t.Errorf("claimed its own %d jobs again (%v)", len(jobs), err)
				}
				if err := dead.Settle(ctx, mine[0], queue.Outcome{Sent: 1}); err == nil {
					t.Error("the first node settled a job the survivor took over")
				}
				if err := survivor.Settle(ctx, mine[0], queue.Outcome{Sent: 1}); err != nil {
					t.Errorf("the survivor's Settle: %v", err)
				}
			})
		}
	})
}

func jobIDs(jobs []queue.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	slices.Sort(out)
	return out
}

// A claim that ended and was taken again is the new claimer's: the first
// claimer, late, can neither settle nor release the job — whether the new
// claimer is another node, or this node's name in a process started again.
func TestClaimFencing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range []struct{ name, second string }{{"another node", "b"}, {"the same name again", "a"}} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				db := b.open(t)
				for _, table := range []string{"bluetick_queue", "bluetick_queue_count", "bluetick_queue_failure"} {
					if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
						t.Fatal(err)
					}
				}
				t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
				first := newQueue(t, db, b, sqlqueue.Options{Node: "a"})
				j := &queue.Job{Session: "s", Chat: "c", Receipts: []session.Receipt{{Chat: "c", MessageIDs: []string{"M"}}}, Accepted: t0, Due: t0}
				if err := first.Enqueue(ctx, j); err != nil {
					t.Fatal(err)
				}
				if jobs, _, err := first.Claim(ctx, queue.Claim{Now: t0, Limit: 1, Lease: time.Minute}); err != nil || len(jobs) != 1 {
					t.Fatalf("first claim: %d jobs, %v", len(jobs), err)
				}
				// The first claimer stalls past its lease; the second claims.
				second := newQueue(t, b.open(t), b, sqlqueue.Options{Node: tc.second})
				later := queue.Claim{Now: t0.Add(2 * time.Minute), Limit: 1, Lease: time.Minute}
				if jobs, _, err := second.Claim(ctx, later); err != nil || len(jobs) != 1 {
					t.Fatalf("second claim: %d jobs, %v", len(jobs), err)
				}

				if err := first.Release(ctx, []int64{j.ID}); err != nil {
					t.Fatal(err)
				}
				if jobs, _, err := second.Claim(ctx, later); err != nil || len(jobs) != 0 {
					t.Errorf("after the first claimer's late Release, %d jobs claimable again (%v), want the second's claim kept", len(jobs), err)
				}
				if err := first.Settle(ctx, j.ID, queue.Outcome{Sent: 1}); err == nil {
					t.Error("the first claimer's late Settle succeeded")
				}
				if err := second.Settle(ctx, j.ID, queue.Outcome{Sent: 1}); err != nil {
					t.Errorf("the second claimer's Settle: %v", err)
				}
				stats, err := second.Stats(ctx)
				if err != nil || len(stats) != 1 || stats[0].Sent != 1 || stats[0].Pending != 0 {
					t.Errorf("stats %+v, %v; want one sent, none pending", stats, err)
				}
			})
		}
	})
}

// fill writes jobs jobs of one receipt for each of sessions sessions
// (s0000, s0001…) into the queue's tables, with sent counts, in one
// transaction, and has the database analyse them.
func fill(t testing.TB, db *sql.DB, sessions, jobs int) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range sessions {
		name := fmt.Sprintf("s%04d", i)
		for k := range jobs {
			if _, err := tx.Exec(`INSERT INTO bluetick_queue (session, chat, receipts, payload, accepted_ms, due_ms)
				VALUES ($1, 'c', 1, '{}', $2, $2)`, name, int64(1000*i+k)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.Exec(`INSERT INTO bluetick_queue_count (session, sent, failed) VALUES ($1, $2, 0)`, name, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
}

// plan returns the database's query plan of query run with args.
func plan(t *testing.T, db *sql.DB, b backend, query string, args ...any) string {
	t.Helper()
	explain := "EXPLAIN "
	if b.dialect == sqlqueue.SQLite {
		explain = "EXPLAIN QUERY PLAN "
	}
	rows, err := db.Query(explain+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1])) // SQLite: detail; PostgreSQL: the line
	}
	return strings.Join(lines, "\n")
}

// The counts of one session (a status request's) are read through
// indexes, by that session: a plan that searches, never one that scans
// every session's jobs (as reading every session's counts does).
func TestStatsOneSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		q := newQueue(t, db, b, sqlqueue.Options{})
		fill(t, db, 1000, 10)
		got, err := q.Stats(context.Background(), "s0042")
		if err != nil || len(got) != 1 || got[0].Session != "s0042" || got[0].Pending != 10 || got[0].Sent != 42 {
			t.Fatalf("Stats(s0042) = %+v, %v; want 10 pending, 42 sent", got, err)
		}
		pending, counts := sqlqueue.StatsQueries(1)
		for _, query := range []string{pending, counts} {
			p := plan(t, db, b, query, "s0042")
			scans := strings.Contains(p, "SCAN") || strings.Contains(p, "Seq Scan")
			if scans || !strings.Contains(strings.ToLower(p), "index") {
				t.Errorf("the plan of %s reads more than the session's rows:\n%s", query, p)
			}
			t.Logf("%s:\n%s", query, p)
		}
		all, _ := sqlqueue.StatsQueries(0)
		t.Logf("every session's, for comparison: %s:\n%s", all, plan(t, db, b, all))
	})
}

// The durable queue through the handler: receipts accepted by one
// handler, stopped with its jobs still waiting, are sent by the next one
// on the same database, once each, and the counts add up across the two.
func TestHandlerRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const n = 20
		fake := sessiontest.New()
		newHandler := func(delay time.Duration) node {
			q := newQueue(t, b.open(t), b, sqlqueue.Options{})
			return newNode(t, fake.Registry("demo"), queue.Options{MinDelay: delay, MaxDelay: delay, Queue: q, Pace: time.Millisecond})
		}
		nd := newHandler(time.Hour)
		for i := range n {
			body := fmt.Sprintf(`{"session":"demo","chatId":"15551234567","messageIds":["M%d"]}`, i)
			r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			nd.h.ServeHTTP(w, r)
			if w.Code != http.StatusCreated { // WAHA's path: every success is a 201, queued ones too
				t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
			}
		}
		err := nd.shutdown(context.Background())
		if st := nd.totals(t); err != nil || st != (totals{Accepted: n, Pending: n}) {
			t.Fatalf("first shutdown: %+v, %v; want all %d pending, kept", st, err, n)
		}
		if got := len(fake.Receipts()); got != 0 {
			t.Fatalf("%d sent before their delay", got)
		}

		nd = newHandler(time.Millisecond)
		deadline := time.Now().Add(30 * time.Second)
		for nd.totals(t).Pending > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the worker's own pace; polled, not hoped
		}
		err = nd.shutdown(context.Background())
		if st := nd.totals(t); err != nil || st != (totals{Accepted: n, Sent: n}) {
			t.Errorf("second shutdown: %+v, %v; want all %d sent", st, err, n)
		}
		seen := map[string]int{}
		for _, rc := range fake.Receipts() {
			for _, id := range rc.MessageIDs {
				seen[id]++
			}
		}
		for i := range n {
			if c := seen[fmt.Sprint("M", i)]; c != 1 {
				t.Errorf("M%d sent %d times", i, c)
			}
		}
		sessions, err := nd.w.Stats(context.Background())
		if err != nil || len(sessions) != 1 || sessions[0].Sent != n || !sessions[0].OldestPending.IsZero() {
			t.Errorf("queue stats %+v, %v", sessions, err)
		}
	})
}

// Two nodes on one PostgreSQL queue, each owning some sessions
// (queue.Options.Local): every receipt is sent once, by its owner.
func TestTwoNodes(t *testing.T) {
	dsn := newPostgresDB(t)
	b := backend{dialect: sqlqueue.Postgres}
	const n = 40
	var (
		mu    sync.Mutex
		owner = map[string]string{} // message id → node that sent it
	)
	var nodes []node
	for _, name := range []string{"even", "odd"} {
		reg := session.NewMemoryRegistry()
		for _, s := range []string{"s0", "s1"} {
			reg.Set(s, session.SessionFunc(func(_ context.Context, r session.Receipt) (session.Result, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, id := range r.MessageIDs {
					if prev, ok := owner[id]; ok {
						t.Errorf("%s sent twice (by %s and %s)", id, prev, name)
					}
					owner[id] = name + "/" + s
				}
				return session.Result{}, nil
			}))
		}
		mine := "s0"
		if name == "odd" {
			mine = "s1"
		}
		q := newQueue(t, openDB(t, "pgx", dsn), b, sqlqueue.Options{Node: name})
		nodes = append(nodes, newNode(t, reg, queue.Options{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, Queue: q,
			Pace: time.Millisecond, Local: func(s string) bool { return s == mine }}))
	}
	for i := range n {
		// Any node accepts any session's request; its owner delivers it.
		body := fmt.Sprintf(`{"session":"s%d","chatId":"15551234567","messageIds":["M%d"]}`, i%2, i)
		r := httptest.NewRequest(http.MethodPost, seenhandler.PathWAHA, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		nodes[(i/2)%2].h.ServeHTTP(w, r)
		if w.Code != http.StatusCreated { // WAHA's path: every success is a 201, queued ones too
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for nodes[0].totals(t).Pending > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, nd := range nodes {
		if err := nd.shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(owner) != n {
		t.Errorf("%d of %d sent", len(owner), n)
	}
	for id, by := range owner {
		i, _ := strconv.Atoi(strings.TrimPrefix(id, "M"))
		want := "even/s0"
		if i%2 == 1 {
			want = "odd/s1"
		}
		if by != want {
			t.Errorf("%s sent by %s, want %s", id, by, want)
		}
	}
}

// Claim.DueWithin: a job accepted with a long delay is due within the
// delay of the process that claims it; a retried one keeps its backoff.
func TestDueWithin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		q := newQueue(t, b.open(t), b, sqlqueue.Options{})
		t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
		long := &queue.Job{Session: "s", Chat: "c", Receipts: []session.Receipt{{Chat: "c", MessageIDs: []string{"L"}}}, Accepted: t0, Due: t0.Add(time.Hour)}
		if err := q.Enqueue(ctx, long); err != nil {
			t.Fatal(err)
		}
		c := queue.Claim{Now: t0.Add(time.Second), Limit: 10, Lease: time.Minute, DueWithin: 2 * time.Second}
		jobs, next, err := q.Claim(ctx, c)
		if err != nil || len(jobs) != 0 || !next.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("at 1 s: %d jobs, next %v, %v; want none, next at 2 s", len(jobs), next, err)
		}
		c.Now = t0.Add(2 * time.Second)
		if jobs, _, err = q.Claim(ctx, c); err != nil || len(jobs) != 1 {
			t.Fatalf("at 2 s: %d jobs, %v; want the job", len(jobs), err)
		}
		err = q.Settle(ctx, long.ID, queue.Outcome{Retry: long.Receipts, RetryAt: t0.Add(time.Minute), LastError: "session_not_connected"})
		if err != nil {
			t.Fatal(err)
		}
		c.Now = t0.Add(30 * time.Second)
		if jobs, next, err = q.Claim(ctx, c); err != nil || len(jobs) != 0 || !next.Equal(t0.Add(time.Minute)) {
			t.Errorf("a retried job: %d claimed at 30 s, next %v, %v; want its retry at 1 min", len(jobs), next, err)
		}
	})
}
