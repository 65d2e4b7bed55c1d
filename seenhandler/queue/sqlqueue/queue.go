package sqlqueue

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
)

// Dialect is the SQL dialect of the database.
type Dialect string

// Dialects, named as whatsmeow names them.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DefaultFailureRetention is how long failure records are kept.
const DefaultFailureRetention = 7 * 24 * time.Hour

// Options configures a [Queue]. The zero value holds the defaults.
type Options struct {
	// Node names this process in its claims (claimed_by). On PostgreSQL, a
	// node that restarts with the same name takes its own claims back at
	// once instead of waiting for their lease: give each replica a stable
	// one (a pod or host name). Default: a random name, new each start.
	Node string
	// FailureRetention is how long the record of a failed receipt is kept
	// in bluetick_queue_failure. Default: [DefaultFailureRetention] (7 days).
	FailureRetention time.Duration
}

// Queue is a durable queue.Queue in a SQL database; see the package
// documentation. It is safe for concurrent use, by several processes on
// PostgreSQL.
type Queue struct {
	db      *sql.DB
	dialect Dialect
	opts    Options

	// claims holds this Queue's claims: job id → the claimed_until_ms its
	// Claim wrote. Settle and Release write only a row that still carries
	// both this node's name and that lease end, so that a claim that ended
	// and was taken again (by another node, or by this node's name in a
	// new process) is the new claimer's alone.
	mu     sync.Mutex
	claims map[int64]int64
}

var _ queue.Queue = (*Queue)(nil)

// New creates the queue's tables in db unless they exist, and releases the
// claims a previous process left (every one on SQLite; on PostgreSQL those
// of opts.Node, when set). The caller keeps db and closes it after the
// handler's Shutdown.
func New(ctx context.Context, db *sql.DB, dialect Dialect, opts Options) (*Queue, error) {
	if db == nil {
		return nil, errors.New("sqlqueue: nil *sql.DB")
	}
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("sqlqueue: unknown dialect %q (want %q or %q)", dialect, SQLite, Postgres)
	}
	if opts.FailureRetention < 0 {
		return nil, errors.New("sqlqueue: negative FailureRetention")
	}
	if opts.FailureRetention == 0 {
		opts.FailureRetention = DefaultFailureRetention
	}
	release := opts.Node != "" || dialect == SQLite
	if opts.Node == "" {
		opts.Node = "node-" + strings.ToLower(rand.Text()[:10])
	}
	q := &Queue{db: db, dialect: dialect, opts: opts, claims: make(map[int64]int64)}
	id := "id INTEGER PRIMARY KEY AUTOINCREMENT"
	if dialect == Postgres {
		id = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS bluetick_queue (
			` + id + `,
			session          TEXT    NOT NULL,
			chat             TEXT    NOT NULL,
			receipts         INTEGER NOT NULL,
			payload          TEXT    NOT NULL,
			times            TEXT    NOT NULL DEFAULT '',
			accepted_ms      BIGINT  NOT NULL,
			due_ms           BIGINT  NOT NULL,
			attempts         INTEGER NOT NULL DEFAULT 0,
			last_error       TEXT    NOT NULL DEFAULT '',
			claimed_until_ms BIGINT  NOT NULL DEFAULT 0,
			claimed_by       TEXT    NOT NULL DEFAULT '',
			token            TEXT    NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX IF NOT EXISTS bluetick_queue_due ON bluetick_queue (due_ms)`,
		// A session's jobs in due order (a fair claim's share), and its
		// pending receipts without reading the rows; the queue's too, by
		// reading this index alone (SQLite).
		`CREATE INDEX IF NOT EXISTS bluetick_queue_session_due ON bluetick_queue (session, due_ms, receipts)`,
		`DROP INDEX IF EXISTS bluetick_queue_session`, // the one above serves its queries
		`CREATE TABLE IF NOT EXISTS bluetick_queue_count (
			session TEXT   PRIMARY KEY,
			sent    BIGINT NOT NULL DEFAULT 0,
			failed  BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE TABLE IF NOT EXISTS bluetick_queue_failure (
			` + id + `,
			job_id    BIGINT  NOT NULL,
			session   TEXT    NOT NULL,
			chat      TEXT    NOT NULL,
			receipts  INTEGER NOT NULL,
			reason    TEXT    NOT NULL,
			failed_ms BIGINT  NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS bluetick_queue_failure_at ON bluetick_queue_failure (failed_ms)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("sqlqueue: create tables: %w", err)
		}
	}
	if err := q.addTokenColumn(ctx); err != nil {
		return nil, err
	}
	if release {
		stmt := `UPDATE bluetick_queue SET claimed_until_ms = 0, claimed_by = '' WHERE claimed_until_ms > 0`
		args := []any{}
		if dialect == Postgres {
			stmt += ` AND claimed_by = $1`
			args = append(args, opts.Node)
		}
		if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
			return nil, fmt.Errorf("sqlqueue: release old claims: %w", err)
		}
	}
	return q, nil
}

// addTokenColumn adds bluetick_queue.token (Job.Token) to a table created
// before it had one, and indexes it: Pending counts a token's receipts
// through that index.
func (q *Queue) addTokenColumn(ctx context.Context) error {
	add := `ALTER TABLE bluetick_queue ADD COLUMN IF NOT EXISTS token TEXT NOT NULL DEFAULT ''`
	if q.dialect == SQLite { // no IF NOT EXISTS there: look first
		var n int
		if err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('bluetick_queue') WHERE name = 'token'`).Scan(&n); err != nil {
			return fmt.Errorf("sqlqueue: add the token column: %w", err)
		}
		add = ""
		if n == 0 {
			add = `ALTER TABLE bluetick_queue ADD COLUMN token TEXT NOT NULL DEFAULT ''`
		}
	}
	for _, stmt := range []string{add, `CREATE INDEX IF NOT EXISTS bluetick_queue_token ON bluetick_queue (token, receipts)`} {
		if stmt == "" {
			continue
		}
		if _, err := q.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlqueue: add the token column: %w", err)
		}
	}
	return nil
}

// payload is a job's receipts, as stored in bluetick_queue.payload;
// bluetick_queue.times holds the times of its messages (id → Unix ms).
type payload struct {
	Receipts []storedReceipt `json:"r"`
	Typing   bool            `json:"ty,omitempty"`
	Auto     bool            `json:"au,omitempty"`
}

type storedReceipt struct {
	Chat      string    `json:"c"`
	Sender    string    `json:"s,omitempty"`
	IDs       []string  `json:"i"`
	Type      string    `json:"y"`
	Timestamp time.Time `json:"ts"`
}

func encodePayload(rs []session.Receipt, typing, auto bool) (string, error) {
	p := payload{Receipts: make([]storedReceipt, len(rs)), Typing: typing, Auto: auto}
	for i, r := range rs {
		p.Receipts[i] = storedReceipt{Chat: r.Chat, Sender: r.Sender, IDs: r.MessageIDs, Type: string(r.Type), Timestamp: r.Timestamp}
	}
	b, err := json.Marshal(p)
	return string(b), err
}

func encodeTimes(times map[string]time.Time) (string, error) {
	if len(times) == 0 {
		return "", nil
	}
	m := make(map[string]int64, len(times))
	for id, t := range times {
		m[id] = t.UnixMilli()
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeJob(payloadText, timesText string, j *queue.Job) error {
	var p payload
	if err := json.Unmarshal([]byte(payloadText), &p); err != nil {
		return err
	}
	j.Typing, j.Auto = p.Typing, p.Auto
	j.Receipts = make([]session.Receipt, len(p.Receipts))
	for i, r := range p.Receipts {
		j.Receipts[i] = session.Receipt{Chat: r.Chat, Sender: r.Sender, MessageIDs: r.IDs, Type: session.ReceiptType(r.Type), Timestamp: r.Timestamp}
	}
	if timesText == "" {
		return nil
	}
	var m map[string]int64
	if err := json.Unmarshal([]byte(timesText), &m); err != nil {
		return err
	}
	j.Times = make(map[string]time.Time, len(m))
	for id, v := range m {
		j.Times[id] = fromMS(v)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// Enqueue implements queue.Queue: one INSERT, committed when it
// returns. A database out of space is an error wrapping
// session.ErrStorageFull.
func (q *Queue) Enqueue(ctx context.Context, job *queue.Job) error {
	if job.Session == "" || len(job.Receipts) == 0 {
		return errors.New("sqlqueue: a job needs a session and receipts")
	}
	p, err := encodePayload(job.Receipts, job.Typing, job.Auto)
	if err != nil {
		return fmt.Errorf("sqlqueue: encode job: %w", err)
	}
	times, err := encodeTimes(job.Times)
	if err != nil {
		return fmt.Errorf("sqlqueue: encode job: %w", err)
	}
	err = q.db.QueryRowContext(ctx, `INSERT INTO bluetick_queue (session, chat, receipts, payload, times, accepted_ms, due_ms, token)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		job.Session, job.Chat, len(job.Receipts), p, times, ms(job.Accepted), ms(job.Due), job.Token).Scan(&job.ID)
	if err != nil {
		return fmt.Errorf("sqlqueue: enqueue: %w", q.full(err))
	}
	return nil
}

// Claim implements queue.Queue. With c.Local, the due jobs of the
// sessions it accepts that another node holds are taken over. With
// c.PerSession, the sessions' due jobs are counted first (one pass over
// the due jobs), the turns are dealt here, and each session's share is
// taken through the (session, due_ms) index.
func (q *Queue) Claim(ctx context.Context, c queue.Claim) ([]queue.Job, time.Time, error) {
	now := ms(c.Now)
	// A job never attempted and accepted before acceptedBy is due whatever
	// its due_ms (Claim.DueWithin); without DueWithin, none is.
	acceptedBy := int64(-1 << 62)
	if c.DueWithin > 0 {
		acceptedBy = ms(c.Now.Add(-c.DueWithin))
	}
	until := ms(c.Now.Add(c.Lease))
	args := []any{until, q.opts.Node, now, acceptedBy}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	const due = `(due_ms <= $3 OR (attempts = 0 AND accepted_ms <= $4))`
	free := `claimed_until_ms <= $3`
	if c.Local != nil {
		// The sessions Local accepts are this node's alone now: another
		// node's claim on their jobs outlived its hold on them (it died, or
		// let them go).
		free = `(claimed_until_ms <= $3 OR claimed_by <> $2)`
	}
	lock := ""
	if q.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var pick string
	if c.PerSession > 0 {
		shares, err := q.turns(ctx, c, now, acceptedBy)
		if err != nil {
			return nil, time.Time{}, err
		}
		if len(shares) == 0 {
			next, err := q.next(ctx, now, c.DueWithin)
			return nil, next, err
		}
		parts := make([]string, len(shares))
		for i, sh := range shares {
			parts[i] = `SELECT id FROM (SELECT id FROM bluetick_queue WHERE session = ` + arg(sh.Session) + ` AND ` + due + ` AND ` + free +
				` ORDER BY due_ms, id LIMIT ` + strconv.Itoa(sh.Jobs) + `) AS share` + strconv.Itoa(i)
		}
		// The row locks are taken once the shares are chosen, and the
		// claim is checked again under them.
		pick = `SELECT id FROM bluetick_queue WHERE id IN (` + strings.Join(parts, " UNION ALL ") + `) AND ` + free + lock
	} else {
		filter := ""
		if c.Local != nil {
			sessions, err := q.dueSessions(ctx, now, acceptedBy)
			if err != nil {
				return nil, time.Time{}, err
			}
			sessions = slices.DeleteFunc(sessions, func(s string) bool { return !c.Local(s) })
			if len(sessions) == 0 {
				next, err := q.next(ctx, now, c.DueWithin)
				return nil, next, err
			}
			marks := make([]string, len(sessions))
			for i, s := range sessions {
				marks[i] = arg(s)
			}
			filter = " AND session IN (" + strings.Join(marks, ", ") + ")"
		}
		pick = `SELECT id FROM bluetick_queue WHERE ` + due + ` AND ` + free + filter + `
			ORDER BY due_ms, id LIMIT ` + arg(c.Limit) + lock
	}
	rows, err := q.db.QueryContext(ctx, `UPDATE bluetick_queue SET claimed_until_ms = $1, claimed_by = $2
		WHERE id IN (`+pick+`)
		RETURNING id, session, chat, payload, times, accepted_ms, due_ms, attempts, last_error, token`, args...)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlqueue: claim: %w", err)
	}
	defer rows.Close()
	var jobs []queue.Job
	for rows.Next() {
		var (
			j                 queue.Job
			p, times          string
			accepted, dueTime int64
		)
		if err := rows.Scan(&j.ID, &j.Session, &j.Chat, &p, &times, &accepted, &dueTime, &j.Attempts, &j.LastError, &j.Token); err != nil {
			return nil, time.Time{}, fmt.Errorf("sqlqueue: claim: %w", err)
		}
		if err := decodeJob(p, times, &j); err != nil {
			return nil, time.Time{}, fmt.Errorf("sqlqueue: job %d: %w", j.ID, err)
		}
		j.Accepted, j.Due = fromMS(accepted), fromMS(dueTime)
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlqueue: claim: %w", err)
	}
	rows.Close()
	q.mu.Lock()
	// Forget the claims that ended a lease ago and were never settled (a
	// Settle that failed): a late Settle of a claim nobody took since still
	// counts until then.
	for id, end := range q.claims {
		if end <= now-c.Lease.Milliseconds() {
			delete(q.claims, id)
		}
	}
	for _, j := range jobs {
		q.claims[j.ID] = until
	}
	q.mu.Unlock()
	slices.SortFunc(jobs, func(a, b queue.Job) int { // RETURNING keeps no order
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	next, err := q.next(ctx, now, c.DueWithin)
	return jobs, next, err
}

// turns counts the due jobs of each session that a fair claim c may take
// (see queue.Claim.PerSession) and deals c.Limit of them (queue.Deal).
func (q *Queue) turns(ctx context.Context, c queue.Claim, now, acceptedBy int64) ([]queue.Share, error) {
	free, args := `claimed_until_ms <= $1`, []any{now, acceptedBy}
	if c.Local != nil {
		free = `(claimed_until_ms <= $1 OR claimed_by <> $3)` // see Claim
		args = append(args, q.opts.Node)
	}
	rows, err := q.db.QueryContext(ctx, `SELECT session, COUNT(*), MIN(due_ms) FROM bluetick_queue
		WHERE (due_ms <= $1 OR (attempts = 0 AND accepted_ms <= $2)) AND `+free+` GROUP BY session`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlqueue: claim: %w", err)
	}
	defer rows.Close()
	var turns []queue.Turn
	for rows.Next() {
		var (
			t   queue.Turn
			due int64
		)
		if err := rows.Scan(&t.Session, &t.Left, &due); err != nil {
			return nil, fmt.Errorf("sqlqueue: claim: %w", err)
		}
		t.Held, t.Due = c.Held[t.Session], fromMS(due)
		t.Left = min(t.Left, c.PerSession-t.Held)
		if c.Local == nil || c.Local(t.Session) {
			turns = append(turns, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlqueue: claim: %w", err)
	}
	return queue.Deal(turns, c.Limit), nil
}

// dueSessions lists the sessions with jobs due at now, unclaimed or
// claimed by another node.
func (q *Queue) dueSessions(ctx context.Context, now, acceptedBy int64) ([]string, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT DISTINCT session FROM bluetick_queue
		WHERE (due_ms <= $1 OR (attempts = 0 AND accepted_ms <= $2)) AND (claimed_until_ms <= $1 OR claimed_by <> $3)`,
		now, acceptedBy, q.opts.Node)
	if err != nil {
		return nil, fmt.Errorf("sqlqueue: claim: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("sqlqueue: claim: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// next returns when the earliest unclaimed job is due; zero when none.
func (q *Queue) next(ctx context.Context, now int64, within time.Duration) (time.Time, error) {
	var due sql.NullInt64
	limit := int64(1 << 62) // a never-attempted job is due by accepted_ms + limit
	if within > 0 {
		limit = within.Milliseconds()
	}
	err := q.db.QueryRowContext(ctx, `SELECT MIN(CASE WHEN attempts = 0 AND accepted_ms + $2 < due_ms THEN accepted_ms + $2 ELSE due_ms END)
		FROM bluetick_queue WHERE claimed_until_ms <= $1`, now, limit).Scan(&due)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlqueue: next due: %w", err)
	}
	if !due.Valid {
		return time.Time{}, nil
	}
	return fromMS(due.Int64), nil
}

// claim returns the lease end of this Queue's claim on job id, if it
// holds one.
func (q *Queue) claim(id int64) (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	until, ok := q.claims[id]
	return until, ok
}

// unclaim forgets this Queue's claim on job id, if it is still the one
// that ends at until.
func (q *Queue) unclaim(id, until int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.claims[id] == until {
		delete(q.claims, id)
	}
}

// Settle implements queue.Queue, in one transaction. Only a job this
// Queue claimed, and nobody claimed since, is settled.
func (q *Queue) Settle(ctx context.Context, id int64, o queue.Outcome) (err error) {
	until, ok := q.claim(id)
	if !ok {
		return fmt.Errorf("sqlqueue: settle job %d: not claimed", id)
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlqueue: settle: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The write comes first: on SQLite it takes the write lock before any
	// read, so that the transaction cannot find its snapshot stale.
	var name, chat string
	if len(o.Retry) == 0 {
		err = tx.QueryRowContext(ctx, `DELETE FROM bluetick_queue WHERE id = $1 AND claimed_by = $2 AND claimed_until_ms = $3
			RETURNING session, chat`, id, q.opts.Node, until).Scan(&name, &chat)
	} else {
		var p string
		if p, err = encodePayload(o.Retry, o.Typing, o.Auto); err != nil {
			return fmt.Errorf("sqlqueue: encode job: %w", err)
		}
		err = tx.QueryRowContext(ctx, `UPDATE bluetick_queue SET receipts = $2, due_ms = $3, attempts = attempts + 1,
			last_error = $4, claimed_until_ms = 0, claimed_by = '', payload = $5
			WHERE id = $1 AND claimed_by = $6 AND claimed_until_ms = $7 RETURNING session, chat`,
			id, len(o.Retry), ms(o.RetryAt), o.LastError, p, q.opts.Node, until).Scan(&name, &chat)
	}
	if errors.Is(err, sql.ErrNoRows) {
		q.unclaim(id, until)
		return fmt.Errorf("sqlqueue: settle job %d: not claimed (any more)", id)
	}
	if err != nil {
		return fmt.Errorf("sqlqueue: settle job %d: %w", id, err)
	}
	if o.Sent+o.Failed > 0 {
		if _, err = tx.ExecContext(ctx, `INSERT INTO bluetick_queue_count (session, sent, failed) VALUES ($1, $2, $3)
			ON CONFLICT (session) DO UPDATE SET sent = bluetick_queue_count.sent + excluded.sent,
				failed = bluetick_queue_count.failed + excluded.failed`, name, o.Sent, o.Failed); err != nil {
			return fmt.Errorf("sqlqueue: settle job %d: count: %w", id, err)
		}
	}
	if o.Failed > 0 {
		now := time.Now()
		if _, err = tx.ExecContext(ctx, `INSERT INTO bluetick_queue_failure (job_id, session, chat, receipts, reason, failed_ms)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, name, chat, o.Failed, o.Reason, ms(now)); err != nil {
			return fmt.Errorf("sqlqueue: settle job %d: record failure: %w", id, err)
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM bluetick_queue_failure WHERE failed_ms < $1`,
			ms(now.Add(-q.opts.FailureRetention))); err != nil {
			return fmt.Errorf("sqlqueue: settle job %d: prune failures: %w", id, err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("sqlqueue: settle job %d: %w", id, err)
	}
	q.unclaim(id, until)
	return nil
}

// Release implements queue.Queue. Only jobs this Queue claimed, and
// nobody claimed since, are released; the others are left as they are.
func (q *Queue) Release(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		until, ok := q.claim(id)
		if !ok {
			continue
		}
		if _, err := q.db.ExecContext(ctx, `UPDATE bluetick_queue SET claimed_until_ms = 0, claimed_by = ''
			WHERE id = $1 AND claimed_by = $2 AND claimed_until_ms = $3`, id, q.opts.Node, until); err != nil {
			return fmt.Errorf("sqlqueue: release job %d: %w", id, err)
		}
		q.unclaim(id, until)
	}
	return nil
}

// statsQueries returns the statements Stats runs for n named sessions
// (every session when n is 0), their parameters $1…$n the names: the
// pending receipts, and the counts. Named, each reads those sessions'
// rows alone, through bluetick_queue_session_due and the count table's key.
func statsQueries(n int) (pending, counts string) {
	where := ""
	if n > 0 {
		marks := make([]string, n)
		for i := range marks {
			marks[i] = "$" + strconv.Itoa(i+1)
		}
		where = " WHERE session IN (" + strings.Join(marks, ", ") + ")"
	}
	return `SELECT session, SUM(receipts), MIN(accepted_ms) FROM bluetick_queue` + where + ` GROUP BY session`,
		`SELECT session, sent, failed FROM bluetick_queue_count` + where
}

// Stats implements queue.Queue.
func (q *Queue) Stats(ctx context.Context, sessions ...string) ([]queue.SessionStats, error) {
	bySession := map[string]*queue.SessionStats{}
	get := func(name string) *queue.SessionStats {
		s, ok := bySession[name]
		if !ok {
			s = &queue.SessionStats{Session: name}
			bySession[name] = s
		}
		return s
	}
	pendingQuery, countsQuery := statsQueries(len(sessions))
	args := make([]any, len(sessions))
	for i, name := range sessions {
		args[i] = name
	}
	if err := q.eachSession(ctx, pendingQuery, args, func(name string, pending, oldestMS int64) {
		s := get(name)
		s.Pending, s.OldestPending = pending, fromMS(oldestMS)
	}); err != nil {
		return nil, err
	}
	if err := q.eachSession(ctx, countsQuery, args, func(name string, sent, failed int64) {
		s := get(name)
		s.Sent, s.Failed = sent, failed
	}); err != nil {
		return nil, err
	}
	out := make([]queue.SessionStats, 0, len(bySession))
	for _, s := range bySession {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b queue.SessionStats) int { return strings.Compare(a.Session, b.Session) })
	return out, nil
}

// eachSession runs one of statsQueries' statements and calls row with
// each row's session and two numbers.
func (q *Queue) eachSession(ctx context.Context, query string, args []any, row func(name string, a, b int64)) error {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlqueue: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			a, b int64
		)
		if err := rows.Scan(&name, &a, &b); err != nil {
			return fmt.Errorf("sqlqueue: stats: %w", err)
		}
		row(name, a, b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlqueue: stats: %w", err)
	}
	return nil
}

// Pending implements queue.Queue in one statement: the session's and
// the token's receipts from their indexes alone (bluetick_queue_session_due,
// bluetick_queue_token); asked, the queue's by reading every pending job
// (on SQLite, that index alone).
func (q *Queue) Pending(ctx context.Context, of queue.PendingOf) (queue.PendingCounts, error) {
	var p queue.PendingCounts
	// Only what is asked is read: a generic plan for token = $2 would read
	// every job without a token when asked for none.
	counts := []string{`(SELECT COALESCE(SUM(receipts), 0) FROM bluetick_queue WHERE session = $1)`}
	args, dest := []any{of.Session}, []any{&p.Session}
	if of.Token != "" {
		counts = append(counts, `(SELECT COALESCE(SUM(receipts), 0) FROM bluetick_queue WHERE token = $2)`)
		args, dest = append(args, of.Token), append(dest, &p.Token)
	}
	if of.Total {
		counts = append(counts, `(SELECT COALESCE(SUM(receipts), 0) FROM bluetick_queue)`)
		dest = append(dest, &p.Total)
	}
	if err := q.db.QueryRowContext(ctx, `SELECT `+strings.Join(counts, ", "), args...).Scan(dest...); err != nil {
		return p, fmt.Errorf("sqlqueue: pending: %w", err)
	}
	return p, nil
}

// Durable implements queue.Queue: true.
func (q *Queue) Durable() bool { return true }
