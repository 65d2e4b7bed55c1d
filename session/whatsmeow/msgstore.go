package whatsmeow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of [WithIndexRetention] and [WithIndexCache].
const (
	// defaultIndexMaxMessages is how many messages the store keeps per
	// session (device) by default: the newest, by their time.
	defaultIndexMaxMessages = 50_000
	// defaultIndexMaxAge is how old a message the store keeps by default.
	defaultIndexMaxAge = 90 * 24 * time.Hour
	// defaultIndexCache is how many messages a [Manager] keeps in memory,
	// across all its sessions, in front of the store.
	defaultIndexCache = 100_000
)

// Bounds of the store's background writer.
const (
	// indexQueueMax bounds the writes waiting for the writer; beyond it
	// new ones are dropped (and logged) rather than slow down whatsmeow's
	// event handling or grow memory without bound.
	indexQueueMax = 100_000
	// indexRowsPerInsert is the most rows one INSERT statement carries
	// (13 parameters each: SQLite allows 32,766 per statement).
	indexRowsPerInsert = 500
	// indexPruneEvery is how many messages a device gets between two
	// prunings of its rows (count and age), and indexPruneInterval how
	// often every device is pruned anyway (age).
	indexPruneEvery    = 1_000
	indexPruneInterval = time.Hour
	// indexWriteTimeout bounds one batch's transaction.
	indexWriteTimeout = 30 * time.Second
)

// messageCols are bluetick_message's columns as messageStore reads and
// writes them, in order.
const messageCols = `id, chat, chat_alt, sender, sender_alt, ts, seen, from_me, played, lid_group, server_id, is_read`

// createMessages creates bluetick_message: the messages each device (the
// whatsmeow device's JID, so that they go with it when WhatsApp logs it
// out) has seen. ts is the message's time and seen when bluetick indexed it
// (the order of messages of the same second), both in Unix nanoseconds.
// The primary key finds a message by id; the chat indexes list a chat's
// messages in either form of its JID (chat_alt: direct chats only); the
// (device, ts) index serves the pruning.
var createMessages = []string{
	`CREATE TABLE IF NOT EXISTS bluetick_message (
	device     TEXT    NOT NULL REFERENCES whatsmeow_device(jid) ON DELETE CASCADE ON UPDATE CASCADE,
	id         TEXT    NOT NULL,
	chat       TEXT    NOT NULL,
	chat_alt   TEXT    NOT NULL,
	sender     TEXT    NOT NULL,
	sender_alt TEXT    NOT NULL,
	ts         BIGINT  NOT NULL,
	seen       BIGINT  NOT NULL,
	from_me    BOOLEAN NOT NULL,
	played     BOOLEAN NOT NULL,
	lid_group  BOOLEAN NOT NULL,
	server_id  BIGINT  NOT NULL,
	is_read    BOOLEAN NOT NULL,
	PRIMARY KEY (device, id, chat)
)`,
	`CREATE INDEX IF NOT EXISTS bluetick_message_chat ON bluetick_message (device, chat, ts, seen)`,
	`CREATE INDEX IF NOT EXISTS bluetick_message_chat_alt ON bluetick_message (device, chat_alt, ts, seen) WHERE chat_alt <> ''`,
	`CREATE INDEX IF NOT EXISTS bluetick_message_ts ON bluetick_message (device, ts)`,
	// The chats the account's owner marked unread (see unreadMarks), in the
	// form WhatsApp named them.
	`CREATE TABLE IF NOT EXISTS bluetick_marked_unread (
	device TEXT NOT NULL REFERENCES whatsmeow_device(jid) ON DELETE CASCADE ON UPDATE CASCADE,
	chat   TEXT NOT NULL,
	PRIMARY KEY (device, chat)
)`,
}

// Retention is how much of the message index the store keeps per session;
// see [WithIndexRetention].
type Retention struct {
	// MaxMessages is the most messages kept per session (device), the
	// newest by their time (fewer when several share the time of the
	// oldest that would be kept). Default: defaultIndexMaxMessages
	// (50,000).
	MaxMessages int
	// MaxAge drops messages older than that. Default:
	// 90 days.
	MaxAge time.Duration
}

func (r Retention) withDefaults() Retention {
	if r.MaxMessages == 0 {
		r.MaxMessages = defaultIndexMaxMessages
	}
	if r.MaxAge == 0 {
		r.MaxAge = defaultIndexMaxAge
	}
	return r
}

// messageStore keeps the message index of a Manager's sessions in the
// store's bluetick_message table. Writes are queued and written in batches
// by one goroutine that the messageStore owns (close stops it after writing
// what is queued), so that whatsmeow's event handling never waits for the
// database; reads query the database from the caller's goroutine. It is
// safe for concurrent use.
type messageStore struct {
	db        *sql.DB
	retention Retention
	log       *slog.Logger
	now       func() time.Time

	mu       sync.Mutex
	queue    []indexOp // waiting for the writer
	inflight []indexOp // being written: still found by pending
	spare    []indexOp // the last batch written, emptied, for the next queue
	queued   uint64    // ops accepted so far
	done     uint64    // ops written (or given up) so far
	progress chan struct{}
	lastSeen int64 // the last seen value handed out: strictly increasing
	dropped  uint64
	closing  bool
	// The lookups' indexes of queue and inflight (spareIdx: spare's),
	// swapped with them: pending and pendingNewest run under mu, which
	// whatsmeow's event handling needs to queue each message, and must not
	// scan up to indexQueueMax ops. nil: none made yet.
	queueIdx, inflightIdx, spareIdx *opIndex

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // the reads, prepared once (parsing a query costs SQLite more than running it)

	wake    chan struct{} // 1-buffered: the queue has work
	stopped chan struct{} // closed when the writer returns

	sincePrune map[string]int // writer only: messages per device since its last pruning
}

// indexOp is one queued write: a message to insert, ids of chat to mark
// read (readIDs), or chat marked unread or no longer (mark).
type indexOp struct {
	device  string
	m       indexed
	readIDs []string
	mark    int8 // +1: chat marked unread; -1: no longer
}

// insert reports whether op inserts a message.
func (op *indexOp) insert() bool { return op.readIDs == nil && op.mark == 0 }

// newMessageStore creates bluetick_message if needed and starts the
// writer.
func newMessageStore(ctx context.Context, db *sql.DB, retention Retention, log *slog.Logger) (*messageStore, error) {
	for _, stmt := range createMessages {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create bluetick_message: %w", err)
		}
	}
	w := &messageStore{
		db: db, retention: retention.withDefaults(), log: log, now: time.Now,
		progress: make(chan struct{}), wake: make(chan struct{}, 1), stopped: make(chan struct{}),
		sincePrune: make(map[string]int), stmts: make(map[string]*sql.Stmt),
	}
	go w.run()
	return w, nil
}

// put queues ms, messages of device, to be written.
func (w *messageStore) put(device string, ms ...indexed) {
	if device == "" || len(ms) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.admit(len(ms)) {
		return
	}
	for _, m := range ms {
		w.enqueue(indexOp{device: device, m: m})
	}
	w.queued += uint64(len(ms))
	w.signal()
}

// markRead queues marking ids of chat read.
func (w *messageStore) markRead(device, chat string, ids []string) {
	if device == "" || len(ids) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.admit(1) {
		return
	}
	w.enqueue(indexOp{device: device, m: indexed{chat: chat}, readIDs: slices.Clone(ids)})
	w.queued++
	w.signal()
}

// markUnread queues recording that device's chat is marked unread (on) or
// no longer.
func (w *messageStore) markUnread(device, chat string, on bool) {
	if device == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.admit(1) {
		return
	}
	op := indexOp{device: device, m: indexed{chat: chat}, mark: -1}
	if on {
		op.mark = 1
	}
	w.enqueue(op)
	w.queued++
	w.signal()
}

// markedUnread returns device's chats marked unread, once every write
// queued before the call has been written.
func (w *messageStore) markedUnread(ctx context.Context, device string) ([]string, error) {
	if err := w.flush(ctx); err != nil {
		return nil, err
	}
	return strings1(w.db.QueryContext(ctx, `SELECT chat FROM bluetick_marked_unread WHERE device = $1`, device))
}

// enqueue appends op to the queue and its index. w.mu is held.
func (w *messageStore) enqueue(op indexOp) {
	if w.queueIdx == nil {
		w.queueIdx = newOpIndex()
	}
	w.queue = append(w.queue, op)
	w.queueIdx.add(w.queue, len(w.queue)-1)
}

// admit reports whether n more ops fit in the queue, counting and logging
// those that do not. w.mu is held.
func (w *messageStore) admit(n int) bool {
	if w.closing {
		return false
	}
	if len(w.queue)+n <= indexQueueMax {
		return true
	}
	if w.dropped == 0 || w.dropped/1000 != (w.dropped+uint64(n))/1000 {
		w.log.Warn("the message index's writer is behind; dropping index writes", "dropped", w.dropped+uint64(n), "queued", len(w.queue))
	}
	w.dropped += uint64(n)
	return false
}

// signal wakes the writer. w.mu is held.
func (w *messageStore) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// seenNow returns the seen value of a message indexed now: the time in Unix
// nanoseconds, strictly after the last one handed out.
func (w *messageStore) seenNow() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastSeen = max(w.now().UnixNano(), w.lastSeen+1)
	return w.lastSeen
}

// close writes what is queued, stops the writer and waits for it. Later
// writes are dropped.
func (w *messageStore) close() {
	w.mu.Lock()
	w.closing = true
	w.signal()
	w.mu.Unlock()
	<-w.stopped
	w.stmtMu.Lock()
	defer w.stmtMu.Unlock()
	for _, st := range w.stmts {
		st.Close()
	}
	clear(w.stmts)
}

// stmt returns query prepared.
func (w *messageStore) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	w.stmtMu.Lock()
	defer w.stmtMu.Unlock()
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	st, err := w.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st
	return st, nil
}

// flush waits until every write queued before it has been written (or
// given up), or ctx ends.
func (w *messageStore) flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	w.mu.Unlock()
	for {
		w.mu.Lock()
		done, progress := w.done, w.progress
		w.mu.Unlock()
		if done >= target {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run is the writer: it writes the queue in batches (what accumulated while
// it wrote the previous one), prunes, and returns once closing with an
// empty queue.
func (w *messageStore) run() {
	defer close(w.stopped)
	prune := time.NewTicker(indexPruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-w.wake:
		case <-prune.C:
			w.pruneAll()
			continue
		}
		for {
			batch, closing := w.take()
			if len(batch) == 0 {
				if closing {
					return
				}
				break
			}
			w.write(batch)
			w.finish(batch)
		}
	}
}

// take makes the queue the batch in flight, which pending still finds, and
// returns it, with whether the store is closing.
func (w *messageStore) take() (batch []indexOp, closing bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch = w.queue
	if len(batch) > 0 {
		w.queue, w.inflight, w.spare = w.spare, batch, nil
		w.queueIdx, w.inflightIdx, w.spareIdx = w.spareIdx, w.queueIdx, nil
	}
	return batch, w.closing
}

// finish ends the batch in flight, written (or given up), keeping its
// storage for a later queue unless a burst grew it.
func (w *messageStore) finish(batch []indexOp) {
	w.mu.Lock()
	defer w.mu.Unlock()
	idx := w.inflightIdx
	w.inflight, w.inflightIdx = nil, nil
	if cap(batch) <= 4*indexRowsPerInsert { // do not keep what a burst grew
		clear(batch)
		w.spare = batch[:0]
		if idx != nil {
			idx.reset()
			w.spareIdx = idx
		}
	}
	w.done += uint64(len(batch))
	close(w.progress)
	w.progress = make(chan struct{})
}

// write writes batch, one transaction per device (a device WhatsApp logged
// out meanwhile fails its own only), then prunes the devices that got
// enough new messages. A failed transaction is logged and dropped: the
// index is an aid, and the memory cache still holds what it held.
func (w *messageStore) write(batch []indexOp) {
	var devices []string
	byDevice := make(map[string][]indexOp)
	for _, op := range batch {
		if _, ok := byDevice[op.device]; !ok {
			devices = append(devices, op.device)
		}
		byDevice[op.device] = append(byDevice[op.device], op)
	}
	for _, device := range devices {
		ops := byDevice[device]
		ctx, cancel := context.WithTimeout(context.Background(), indexWriteTimeout)
		err := w.writeDevice(ctx, device, ops)
		cancel()
		if err != nil {
			w.log.Warn("writing the message index failed; these messages are not in the store", "device", device, "writes", len(ops), "error", err)
			continue
		}
		for _, op := range ops {
			if op.insert() {
				w.sincePrune[device]++
			}
		}
		if w.sincePrune[device] >= indexPruneEvery {
			w.prune(device)
		}
	}
}

// writeDevice writes one device's ops in order, in one transaction:
// consecutive inserts (of the same olderHistory) as multi-row upserts.
func (w *messageStore) writeDevice(ctx context.Context, device string, ops []indexOp) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	for i := 0; i < len(ops); {
		if op := &ops[i]; op.mark != 0 {
			if err := markUnreadTx(ctx, tx, device, op.m.chat, op.mark > 0); err != nil {
				return err
			}
			i++
			continue
		}
		if ops[i].readIDs != nil {
			if err := markReadTx(ctx, tx, device, ops[i].m.chat, ops[i].readIDs); err != nil {
				return err
			}
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].insert() && ops[j].m.olderHistory == ops[i].m.olderHistory && j-i < indexRowsPerInsert {
			j++
		}
		if err := upsertTx(ctx, tx, device, ops[i:j]); err != nil {
			return err
		}
		i = j
	}
	return tx.Commit()
}

// upsertTx inserts the messages of ops, replacing earlier records of the
// same messages as index.add does (read stays read, known alternate forms
// stay), or, for olderHistory messages (all of ops or none), leaving them
// as they are. A message twice in ops is written once, merged.
func upsertTx(ctx context.Context, tx *sql.Tx, device string, ops []indexOp) error {
	rows := make([]indexed, 0, len(ops))
	at := make(map[indexKey]int, len(ops))
	for _, op := range ops {
		k := indexKey{chat: op.m.chat, id: op.m.id}
		if i, ok := at[k]; ok {
			rows[i] = merged(rows[i], op.m)
			continue
		}
		at[k] = len(rows)
		rows = append(rows, op.m)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO bluetick_message (device, ` + messageCols + `) VALUES `)
	args := make([]any, 0, len(rows)*13)
	for i, m := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range 13 {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(len(args) + c + 1))
		}
		b.WriteByte(')')
		args = append(args, device, m.id, m.chat, m.chatAlt, m.sender, m.senderAlt, unixNano(m.timestamp), m.seen,
			m.fromMe, m.played, m.lidGroup, m.serverID, m.read)
	}
	if ops[0].m.olderHistory {
		b.WriteString(` ON CONFLICT (device, id, chat) DO NOTHING`)
		_, err := tx.ExecContext(ctx, b.String(), args...)
		return err
	}
	b.WriteString(` ON CONFLICT (device, id, chat) DO UPDATE SET
	chat_alt = CASE WHEN excluded.chat_alt <> '' THEN excluded.chat_alt ELSE bluetick_message.chat_alt END,
	sender = excluded.sender,
	sender_alt = CASE WHEN excluded.sender_alt <> '' THEN excluded.sender_alt ELSE bluetick_message.sender_alt END,
	ts = excluded.ts, from_me = excluded.from_me, played = excluded.played,
	lid_group = excluded.lid_group, server_id = excluded.server_id,
	is_read = (bluetick_message.is_read OR excluded.is_read)`)
	_, err := tx.ExecContext(ctx, b.String(), args...)
	return err
}

// markReadTx marks ids of chat (either form of its JID) read.
func markReadTx(ctx context.Context, tx *sql.Tx, device, chat string, ids []string) error {
	var b strings.Builder
	b.WriteString(`UPDATE bluetick_message SET is_read = TRUE WHERE device = $1 AND (chat = $2 OR chat_alt = $2) AND id IN (`)
	args := []any{device, chat}
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		args = append(args, id)
		b.WriteString("$" + strconv.Itoa(len(args)))
	}
	b.WriteByte(')')
	_, err := tx.ExecContext(ctx, b.String(), args...)
	return err
}

// markUnreadTx records that device's chat is marked unread (on) or no
// longer.
func markUnreadTx(ctx context.Context, tx *sql.Tx, device, chat string, on bool) error {
	q := `DELETE FROM bluetick_marked_unread WHERE device = $1 AND chat = $2`
	if on {
		q = `INSERT INTO bluetick_marked_unread (device, chat) VALUES ($1, $2) ON CONFLICT (device, chat) DO NOTHING`
	}
	_, err := tx.ExecContext(ctx, q, device, chat)
	return err
}

// prune drops device's messages beyond the retention: older than MaxAge,
// and beyond the newest MaxMessages.
func (w *messageStore) prune(device string) {
	w.sincePrune[device] = 0
	ctx, cancel := context.WithTimeout(context.Background(), indexWriteTimeout)
	defer cancel()
	cutoff := w.now().Add(-w.retention.MaxAge).UnixNano()
	_, err := w.db.ExecContext(ctx, `DELETE FROM bluetick_message WHERE device = $1 AND ts < $2`, device, cutoff)
	if err == nil {
		_, err = w.db.ExecContext(ctx, `DELETE FROM bluetick_message WHERE device = $1 AND ts <= (
	SELECT ts FROM bluetick_message WHERE device = $1 ORDER BY ts DESC LIMIT 1 OFFSET $2)`, device, w.retention.MaxMessages)
	}
	if err != nil {
		w.log.Warn("pruning the message index failed", "device", device, "error", err)
	}
}

// pruneAll prunes every device that has messages.
func (w *messageStore) pruneAll() {
	ctx, cancel := context.WithTimeout(context.Background(), indexWriteTimeout)
	devices, err := w.devices(ctx)
	cancel()
	if err != nil {
		w.log.Warn("pruning the message index failed", "error", err)
		return
	}
	for _, d := range devices {
		w.prune(d)
	}
}

func (w *messageStore) devices(ctx context.Context) ([]string, error) {
	return strings1(w.db.QueryContext(ctx, `SELECT DISTINCT device FROM bluetick_message`))
}

// ids returns device's message ids in the store (an id in several chats
// once per chat), once every write queued before the call has been
// written.
func (w *messageStore) ids(ctx context.Context, device string) ([]string, error) {
	if err := w.flush(ctx); err != nil {
		return nil, err
	}
	st, err := w.stmt(ctx, `SELECT id FROM bluetick_message WHERE device = $1`)
	if err != nil {
		return nil, err
	}
	return strings1(st.QueryContext(ctx, device))
}

// strings1 returns the values of rows, a query of one text column, and
// closes them.
func strings1(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// pending returns the newest queued (not yet written) message of device
// with id in chat (either form of its JID), read if a queued write marks
// it read after it was queued. It looks at the ops of device with id only
// (opIndex), in the order they are written.
func (w *messageStore) pending(device, chat, id string) (indexed, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var (
		m     indexed
		found bool
		buf   [8]int32
	)
	for _, b := range [...]struct {
		ops []indexOp
		idx *opIndex
	}{{w.inflight, w.inflightIdx}, {w.queue, w.queueIdx}} { // in the order they are written
		for _, i := range b.idx.withID(buf[:0], device, id) {
			op := &b.ops[i]
			switch {
			case op.insert() && (op.m.chat == chat || op.m.chatAlt == chat):
				read := found && m.read
				m, found = op.m, true
				m.read = m.read || read
			case op.readIDs != nil && found && (op.m.chat == m.chat || op.m.chat == m.chatAlt && m.chatAlt != ""):
				m.read = true
			}
		}
	}
	return m, found
}

// get returns device's message id in chat (either form of its JID), queued
// or written.
func (w *messageStore) get(ctx context.Context, device, chat, id string) (indexed, bool, error) {
	if m, ok := w.pending(device, chat, id); ok {
		return m, true, nil
	}
	ms, err := w.query(ctx, `SELECT `+messageCols+` FROM bluetick_message
	WHERE device = $1 AND id = $2 AND (chat = $3 OR chat_alt = $3) ORDER BY seen DESC LIMIT 1`, device, id, chat)
	if err != nil || len(ms) == 0 {
		return indexed{}, false, err
	}
	return ms[0], true, nil
}

// unread returns device's newest limit incoming messages of chat (either
// form of its JID) not yet read, oldest first, once the writes queued
// before have been written (a chat-only request is rare enough to wait
// for them, and their read marks matter).
func (w *messageStore) unread(ctx context.Context, device, chat string, limit int) ([]indexed, error) {
	if err := w.flush(ctx); err != nil {
		return nil, err
	}
	ms, err := w.chatNewest(ctx, device, chat, `AND NOT from_me AND NOT is_read`, limit)
	if err != nil {
		return nil, err
	}
	slices.Reverse(ms)
	return ms, nil
}

// newest returns device's newest message of chat (either form of its JID),
// queued or written. It does not wait for the writer: it runs on every
// read request (the "mark chat read" patch).
func (w *messageStore) newest(ctx context.Context, device, chat string) (indexed, bool, error) {
	queued, inQueue := w.pendingNewest(device, chat)
	ms, err := w.chatNewest(ctx, device, chat, "", 1)
	switch {
	case err != nil:
		return indexed{}, false, err
	case len(ms) == 0:
		return queued, inQueue, nil
	case inQueue && newer(queued, ms[0]):
		return queued, true, nil
	}
	return ms[0], true, nil
}

// chatNewest returns device's newest limit messages of chat matching cond
// (SQL after WHERE … AND), newest first: one query per form of the chat's
// JID, each read backwards along its index, merged here (a message recorded
// under both forms of a direct chat counts once).
func (w *messageStore) chatNewest(ctx context.Context, device, chat, cond string, limit int) ([]indexed, error) {
	const order = ` ORDER BY ts DESC, seen DESC LIMIT $3`
	byChat, err := w.query(ctx, `SELECT `+messageCols+` FROM bluetick_message WHERE device = $1 AND chat = $2 `+cond+order, device, chat, limit)
	if err != nil {
		return nil, err
	}
	byAlt, err := w.query(ctx, `SELECT `+messageCols+` FROM bluetick_message WHERE device = $1 AND chat_alt = $2 AND chat_alt <> '' `+cond+order, device, chat, limit)
	if err != nil {
		return nil, err
	}
	out := make([]indexed, 0, min(limit, len(byChat)+len(byAlt)))
	seen := make(map[string]bool, cap(out))
	for len(out) < limit && (len(byChat) > 0 || len(byAlt) > 0) {
		var m indexed
		if len(byAlt) == 0 || (len(byChat) > 0 && !newer(byAlt[0], byChat[0])) {
			m, byChat = byChat[0], byChat[1:]
		} else {
			m, byAlt = byAlt[0], byAlt[1:]
		}
		if !seen[m.id] {
			seen[m.id] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// newer reports whether a is newer than b, as the store orders messages.
func newer(a, b indexed) bool {
	if c := a.timestamp.Compare(b.timestamp); c != 0 {
		return c > 0
	}
	return a.seen > b.seen
}

// pendingNewest returns the newest queued (not yet written) message of
// device in chat (either form of its JID): what opIndex keeps for it.
func (w *messageStore) pendingNewest(device, chat string) (indexed, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	best, found := w.queueIdx.newestOf(w.queue, device, chat)
	if m, ok := w.inflightIdx.newestOf(w.inflight, device, chat); ok && (!found || newer(m, best)) {
		best, found = m, true
	}
	return best, found
}

// opIndex finds the ops of a batch (the queue, or the batch in flight) as
// pending and pendingNewest look for them, in O(1) and O(matches) rather
// than O(ops): by device and message id (a message's inserts and the read
// marks that name it), and a chat's newest insert by device and either
// form of the chat's JID. It grows with its batch, and is reset or dropped
// with it. A nil *opIndex is empty.
type opIndex struct {
	byID   map[opKey]int32 // the last entry of links for the key
	links  []opLink
	newest map[opKey]int32 // (device, chat or chatAlt) → the newest insert's position
}

// opKey is a device and a message id or chat JID.
type opKey struct{ device, name string }

// opLink is an entry of opIndex.byID's chains: an op's position in its
// batch and the entry before it of the same key (-1: none).
type opLink struct{ op, prev int32 }

// newOpIndex returns an empty opIndex.
func newOpIndex() *opIndex {
	return &opIndex{byID: make(map[opKey]int32), newest: make(map[opKey]int32)}
}

// add indexes ops[i].
func (x *opIndex) add(ops []indexOp, i int) {
	op := &ops[i]
	switch {
	case op.insert():
		x.link(opKey{op.device, op.m.id}, i)
		x.offer(ops, opKey{op.device, op.m.chat}, i)
		if op.m.chatAlt != "" {
			x.offer(ops, opKey{op.device, op.m.chatAlt}, i)
		}
	case op.readIDs != nil:
		for _, id := range op.readIDs {
			x.link(opKey{op.device, id}, i)
		}
	}
}

// link appends op i to k's chain, once.
func (x *opIndex) link(k opKey, i int) {
	prev, ok := x.byID[k]
	if !ok {
		prev = -1
	} else if x.links[prev].op == int32(i) {
		return // an id twice in one read mark
	}
	x.byID[k] = int32(len(x.links))
	x.links = append(x.links, opLink{op: int32(i), prev: prev})
}

// offer makes insert i the newest of chat k unless an earlier one is as
// new.
func (x *opIndex) offer(ops []indexOp, k opKey, i int) {
	if j, ok := x.newest[k]; !ok || newer(ops[i].m, ops[j].m) {
		x.newest[k] = int32(i)
	}
}

// withID appends to buf the positions of the ops of device that name id,
// oldest first.
func (x *opIndex) withID(buf []int32, device, id string) []int32 {
	if x == nil {
		return buf
	}
	e, ok := x.byID[opKey{device, id}]
	for ok && e >= 0 {
		buf = append(buf, x.links[e].op)
		e = x.links[e].prev
	}
	slices.Reverse(buf)
	return buf
}

// newestOf returns device's newest insert of chat in ops, the batch x
// indexes.
func (x *opIndex) newestOf(ops []indexOp, device, chat string) (indexed, bool) {
	if x == nil {
		return indexed{}, false
	}
	i, ok := x.newest[opKey{device, chat}]
	if !ok {
		return indexed{}, false
	}
	return ops[i].m, true
}

// reset empties x for the next batch.
func (x *opIndex) reset() {
	clear(x.byID)
	clear(x.newest)
	x.links = x.links[:0]
}

// groupMode reports whether device's newest written message of group from
// another member was addressed by LID (the account's own do not tell: see
// groupInfo); known is false when the store holds none.
func (w *messageStore) groupMode(ctx context.Context, device, group string) (lid, known bool, err error) {
	st, err := w.stmt(ctx, `SELECT lid_group FROM bluetick_message WHERE device = $1 AND chat = $2 AND NOT from_me
ORDER BY ts DESC, seen DESC LIMIT 1`)
	if err != nil {
		return false, false, err
	}
	err = st.QueryRowContext(ctx, device, group).Scan(&lid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	return lid, err == nil, err
}

func (w *messageStore) query(ctx context.Context, query string, args ...any) ([]indexed, error) {
	st, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []indexed
	for rows.Next() {
		var (
			m      indexed
			ts, sn int64
		)
		if err := rows.Scan(&m.id, &m.chat, &m.chatAlt, &m.sender, &m.senderAlt, &ts, &sn,
			&m.fromMe, &m.played, &m.lidGroup, &m.serverID, &m.read); err != nil {
			return nil, err
		}
		m.timestamp, m.seen = fromUnixNano(ts), sn
		out = append(out, m)
	}
	return out, rows.Err()
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
