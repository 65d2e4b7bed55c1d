package whatsmeow

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// openMessageStore opens the message index of st's store, whose device
// user is stored (SaveDevice), with retention r.
func openMessageStore(t testing.TB, dsn string, r Retention) (*messageStore, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	st, err := openDB(ctx, dsn, DBPool{})
	if err != nil {
		t.Fatal(err)
	}
	if st.lock != nil {
		st.lock.Close() // the test opens the file again itself
	}
	db := st.db
	w, err := newMessageStore(ctx, db, r, slog.New(slog.DiscardHandler))
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return w, db
}

func ids(ms []indexed) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.id)
	}
	return out
}

// The store keeps what the memory index knew — by id in
// either form of a direct chat's JID, a chat's unread and newest messages,
// a group's addressing — across a close and a reopen, keyed by the device.
func TestMessageStore(t *testing.T) {
	ForEachStore(t, func(t *testing.T, st TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000009")
		st.SaveDevice(t, "15550000008")
		device := types.NewADJID("15550000009", 0, 1).String()
		other := types.NewADJID("15550000008", 0, 1).String()
		t0 := time.Unix(1767225500, 0)
		const (
			dm, dmLID = "15551234567@s.whatsapp.net", "123456789012345@lid"
			grp       = "120363012345678901@g.us"
			memberLID = "222222222222222@lid"
			member    = "15557654321@s.whatsapp.net"
			channel   = "120363123456789012@newsletter"
		)
		w, db := openMessageStore(t, st.DSN, Retention{})
		msgs := []indexed{
			{chat: dmLID, chatAlt: dm, id: "D1", sender: dmLID, senderAlt: dm, timestamp: t0},
			{chat: dmLID, chatAlt: dm, id: "D2", sender: "15550000009@s.whatsapp.net", fromMe: true, timestamp: t0.Add(time.Second)},
			{chat: dmLID, chatAlt: dm, id: "D3", sender: dmLID, timestamp: t0.Add(2 * time.Second), played: true},
			{chat: grp, id: "G1", sender: memberLID, senderAlt: member, lidGroup: true, timestamp: t0},
			{chat: channel, id: "C1", sender: channel, serverID: 101, timestamp: t0},
		}
		for i := range msgs {
			msgs[i].seen = w.seenNow()
		}
		w.put(device, msgs...)
		w.put(other, indexed{chat: dm, id: "X1", sender: dm, timestamp: t0, seen: w.seenNow()})

		// Found before the writer wrote it, and after.
		got, ok, err := w.get(ctx, device, dm, "D1")
		if err != nil || !ok || got.sender != dmLID {
			t.Errorf("get D1 by the phone number, maybe queued: %+v %v %v", got, ok, err)
		}
		if err := w.flush(ctx); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			chat, id string
			want     *indexed
		}{
			{dm, "D1", &msgs[0]}, {dmLID, "D1", &msgs[0]}, {dm, "D2", &msgs[1]}, {dmLID, "D3", &msgs[2]},
			{grp, "G1", &msgs[3]}, {channel, "C1", &msgs[4]},
			{dm, "X1", nil}, // another device's
			{grp, "D1", nil},
		} {
			got, ok, err := w.get(ctx, device, tc.chat, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if ok {
					t.Errorf("get(%s, %s) = %+v, want none", tc.chat, tc.id, got)
				}
				continue
			}
			want := *tc.want
			if !ok || !got.timestamp.Equal(want.timestamp) {
				t.Errorf("get(%s, %s) = %+v, %v; want %+v", tc.chat, tc.id, got, ok, want)
				continue
			}
			got.timestamp = want.timestamp
			if !reflect.DeepEqual(got, want) {
				t.Errorf("get(%s, %s)\n got %+v\nwant %+v", tc.chat, tc.id, got, want)
			}
		}
		unread, err := w.unread(ctx, device, dm, 10)
		if err != nil || !reflect.DeepEqual(ids(unread), []string{"D1", "D3"}) {
			t.Errorf("unread = %v, %v; want D1 D3 (D2 is our own)", ids(unread), err)
		}
		if unread, _ := w.unread(ctx, device, dmLID, 1); !reflect.DeepEqual(ids(unread), []string{"D3"}) {
			t.Errorf("unread limit 1 = %v, want the newest, D3", ids(unread))
		}
		if m, ok, err := w.newest(ctx, device, dm); err != nil || !ok || m.id != "D3" {
			t.Errorf("newest = %+v, %v, %v", m, ok, err)
		}
		if _, ok, err := w.newest(ctx, device, "15559999999@s.whatsapp.net"); err != nil || ok {
			t.Errorf("newest of an unknown chat: %v, %v", ok, err)
		}
		if lid, known, err := w.groupMode(ctx, device, grp); err != nil || !known || !lid {
			t.Errorf("groupMode = %v, %v, %v", lid, known, err)
		}

		// Read here, then recorded again unread (a history sync's older
		// view): it stays read.
		w.markRead(device, dm, []string{"D1"})
		w.put(device, indexed{chat: dmLID, id: "D1", sender: dmLID, timestamp: t0, seen: w.seenNow()})
		if unread, _ := w.unread(ctx, device, dmLID, 10); !reflect.DeepEqual(ids(unread), []string{"D3"}) {
			t.Errorf("after D1 read: unread = %v", ids(unread))
		}
		if m, _, _ := w.get(ctx, device, dm, "D1"); m.chatAlt != dm || m.senderAlt != dm {
			t.Errorf("a record without the other forms forgot them: %+v", m)
		}

		// Closed with a write queued: it is written; a new store finds all.
		w.put(device, indexed{chat: dmLID, chatAlt: dm, id: "D4", sender: dmLID, timestamp: t0.Add(3 * time.Second), seen: w.seenNow()})
		if m, ok, err := w.newest(ctx, device, dm); err != nil || !ok || m.id != "D4" {
			t.Errorf("newest, queued or written = %+v, %v, %v; want D4", m, ok, err)
		}
		w.close()
		db.Close()
		w, db = openMessageStore(t, st.DSN, Retention{})
		defer db.Close()
		defer w.close()
		if unread, _ := w.unread(ctx, device, dm, 10); !reflect.DeepEqual(ids(unread), []string{"D3", "D4"}) {
			t.Errorf("after reopening: unread = %v, want D3 D4", ids(unread))
		}

		// WhatsApp logs the device out: whatsmeow deletes it, and its
		// messages go with it.
		if _, err := db.ExecContext(ctx, `DELETE FROM whatsmeow_device WHERE jid = $1`, device); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM bluetick_message WHERE device = $1`, device).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d messages of a deleted device left (%v)", n, err)
		}
	})
}

// The store keeps at most MaxMessages per device (the
// newest) and nothing older than MaxAge.
func TestMessageStoreRetention(t *testing.T) {
	ForEachStore(t, func(t *testing.T, st TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000009")
		device := types.NewADJID("15550000009", 0, 1).String()
		w, db := openMessageStore(t, st.DSN, Retention{MaxMessages: 3, MaxAge: 24 * time.Hour})
		defer db.Close()
		defer w.close()
		now := time.Now()
		var ms []indexed
		for i := range 5 {
			ms = append(ms, indexed{chat: "15551234567@s.whatsapp.net", id: fmt.Sprintf("M%d", i), sender: "15551234567@s.whatsapp.net",
				timestamp: now.Add(time.Duration(i-5) * time.Minute), seen: w.seenNow()})
		}
		ms = append(ms, indexed{chat: "15551234568@s.whatsapp.net", id: "OLD", sender: "15551234568@s.whatsapp.net",
			timestamp: now.Add(-48 * time.Hour), seen: w.seenNow()})
		w.put(device, ms...)
		if err := w.flush(ctx); err != nil {
			t.Fatal(err)
		}
		w.pruneAll() // the hourly pruning; the writer is idle, flushed
		rows, err := db.QueryContext(ctx, `SELECT id FROM bluetick_message WHERE device = $1 ORDER BY ts`, device)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var left []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			left = append(left, id)
		}
		if !reflect.DeepEqual(left, []string{"M2", "M3", "M4"}) {
			t.Errorf("kept %v, want the newest three, M2 M3 M4", left)
		}
	})
}

// A Manager's sessions share one memory cache, bounded
// for all of them; what it forgot is found in the store, and a closed
// session's messages leave it.
func TestSharedCache(t *testing.T) {
	ForEachStore(t, func(t *testing.T, st TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000009")
		st.SaveDevice(t, "15550000008")
		w, db := openMessageStore(t, st.DSN, Retention{})
		defer db.Close()
		defer w.close()
		cache := newIndex(3)
		idA, idB := types.NewADJID("15550000009", 0, 1), types.NewADJID("15550000008", 0, 1)
		a := newMessages(storeOptions(w, cache, "1"), deviceWith(idA))
		b := newMessages(storeOptions(w, cache, "2"), deviceWith(idB))
		const dm = "15551234567@s.whatsapp.net"
		for i := range 3 {
			a.add(indexed{chat: dm, id: fmt.Sprintf("A%d", i), sender: dm, timestamp: time.Unix(1767225500, 0)})
			b.add(indexed{chat: dm, id: fmt.Sprintf("B%d", i), sender: dm, timestamp: time.Unix(1767225500, 0)})
		}
		if n := cache.order.Len(); n != 3 {
			t.Errorf("the cache holds %d messages, want its bound, 3, for both sessions", n)
		}
		if _, ok := cache.get("1", dm, "A0"); ok {
			t.Error("A0 is still cached")
		}
		for _, tc := range []struct {
			x      *messages
			id     string
			wantOK bool
		}{{a, "A0", true}, {a, "B0", false}, {b, "B0", true}, {b, "A2", false}} {
			if _, ok, err := tc.x.get(ctx, dm, tc.id); err != nil || ok != tc.wantOK {
				t.Errorf("get %s = %v, %v; want %v", tc.id, ok, err, tc.wantOK)
			}
		}
		if _, ok := cache.get("1", dm, "A0"); !ok {
			t.Error("A0, read from the store, was not cached")
		}
		a.close()
		for e := cache.order.Front(); e != nil; e = e.Next() {
			if e.Value.(*indexed).owner == "1" {
				t.Errorf("a closed session's message is still cached: %+v", e.Value)
			}
		}
	})
}

func deviceWith(id types.JID) *store.Device { return &store.Device{ID: &id} }

// A message still queued for the writer, and marked read after it was
// queued (a read receipt from the account's phone, with the cache no longer
// holding it), is found read, as the writer will store it; a mark queued
// before the message, which the writer applies to no row, is not. Neither
// is another device's mark.
func TestPendingMessageMarkedRead(t *testing.T) {
	const dm, dmLID = "15551234567@s.whatsapp.net", "123456789012345@lid"
	put := func(device, id string) indexOp {
		return indexOp{device: device, m: indexed{chat: dmLID, chatAlt: dm, id: id, sender: dmLID}}
	}
	read := func(device, chat string, ids ...string) indexOp {
		return indexOp{device: device, m: indexed{chat: chat}, readIDs: ids}
	}
	w := &messageStore{progress: make(chan struct{}), wake: make(chan struct{}, 1)}
	queue := func(ops ...indexOp) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, op := range ops {
			w.enqueue(op)
		}
	}
	queue(put("d", "M1"), read("d", "15550000000@s.whatsapp.net", "M2"), read("d", dm, "M4"))
	w.take() // in flight
	queue(read("d", dm, "M1"), put("d", "M2"), put("d", "M3"), read("e", dmLID, "M3"),
		put("d", "M4"), put("d", "M1"))
	for _, tc := range []struct {
		id   string
		read bool
	}{{"M1", true}, {"M2", false}, {"M3", false}, {"M4", false}} {
		m, ok := w.pending("d", dmLID, tc.id)
		if !ok || m.read != tc.read {
			t.Errorf("pending %s: found %v, read %v; want found, read %v", tc.id, ok, m.read, tc.read)
		}
	}
}

// A bad index option is an error of Open.
func TestIndexOptionErrors(t *testing.T) {
	for name, opt := range map[string]Option{
		"negative cache":        WithIndexCache(-1),
		"negative max":          WithIndexRetention(Retention{MaxMessages: -1}),
		"negative age":          WithIndexRetention(Retention{MaxAge: -time.Hour}),
		"negative session size": WithIndexSize(-1),
	} {
		if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), opt); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

// scanPending and scanNewest are pending and pendingNewest as a scan of
// every queued op: the reference their index must agree with. w.mu is
// not needed (no writer runs).
func scanPending(w *messageStore, device, chat, id string) (indexed, bool) {
	var (
		m     indexed
		found bool
	)
	for _, ops := range [][]indexOp{w.inflight, w.queue} {
		for i := range ops {
			op := &ops[i]
			switch {
			case op.device != device:
			case op.insert() && op.m.id == id && (op.m.chat == chat || op.m.chatAlt == chat):
				read := found && m.read
				m, found = op.m, true
				m.read = m.read || read
			case op.readIDs != nil && found && (op.m.chat == m.chat || op.m.chat == m.chatAlt && m.chatAlt != "") &&
				slices.Contains(op.readIDs, id):
				m.read = true
			}
		}
	}
	return m, found
}

// scanNewest is pendingNewest as a scan of every queued op.
func scanNewest(w *messageStore, device, chat string) (indexed, bool) {
	var (
		best  indexed
		found bool
	)
	for _, ops := range [][]indexOp{w.queue, w.inflight} {
		for i := range ops {
			op := &ops[i]
			if op.insert() && op.device == device && (op.m.chat == chat || op.m.chatAlt == chat) && (!found || newer(op.m, best)) {
				best, found = op.m, true
			}
		}
	}
	return best, found
}

// The lookups of queued messages go through an index of the queue, not a
// scan of it, and find what a scan finds, whatever the ops and however
// the writer's batches cut them: random inserts (in either form of a
// direct chat, an id in several chats, times and seen values that tie),
// read marks (an id twice in one), unread marks, over three devices, with
// batches taken and finished between them.
func TestPendingIndexMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 9))
	w := &messageStore{log: slog.New(slog.DiscardHandler), now: time.Now,
		progress: make(chan struct{}), wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	devices := []string{"d1", "d2", "d3"}
	forms := [][2]string{{"1@lid", "1@s.whatsapp.net"}, {"2@g.us", ""}, {"3@s.whatsapp.net", "3@lid"}}
	ids := []string{"A", "B", "C", "D", "E", "F"}
	t0 := time.Unix(1767225500, 0)
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	chatForm := func() (chat, alt string) {
		f := forms[r.IntN(len(forms))]
		if f[1] != "" && r.IntN(2) == 0 {
			return f[1], f[0]
		}
		return f[0], f[1]
	}
	var lookups, hits int
	check := func(step int) {
		t.Helper()
		for _, d := range append(devices, "d4") {
			for _, f := range forms {
				for _, chat := range []string{f[0], f[1], "9@s.whatsapp.net"} {
					if chat == "" {
						continue
					}
					want, wantOK := scanNewest(w, d, chat)
					if got, ok := w.pendingNewest(d, chat); ok != wantOK || got != want {
						t.Fatalf("step %d: pendingNewest(%s, %s) = %+v, %v; the scan finds %+v, %v", step, d, chat, got, ok, want, wantOK)
					}
					for _, id := range append(ids, "Z") {
						want, wantOK := scanPending(w, d, chat, id)
						got, ok := w.pending(d, chat, id)
						if ok != wantOK || got != want {
							t.Fatalf("step %d: pending(%s, %s, %s) = %+v, %v; the scan finds %+v, %v", step, d, chat, id, got, ok, want, wantOK)
						}
						lookups++
						if ok {
							hits++
						}
					}
				}
			}
		}
	}
	var flight []indexOp
	for step := range 2_000 {
		switch k := r.IntN(20); {
		case k < 12:
			chat, alt := chatForm()
			w.put(pick(devices), indexed{chat: chat, chatAlt: alt, id: pick(ids), sender: "s",
				timestamp: t0.Add(time.Duration(r.IntN(4)) * time.Second), seen: int64(r.IntN(3)), played: r.IntN(2) == 0})
		case k < 16:
			chat, _ := chatForm()
			w.markRead(pick(devices), chat, []string{pick(ids), pick(ids)})
		case k < 17:
			chat, _ := chatForm()
			w.markUnread(pick(devices), chat, r.IntN(2) == 0)
		case k < 19:
			if flight != nil { // the writer finishes a batch before it takes the next
				w.finish(flight)
				flight = nil
			}
			if batch, _ := w.take(); len(batch) > 0 { // as the writer: an empty one is none
				flight = batch
			}
		default:
			if flight != nil {
				w.finish(flight)
				flight = nil
			}
		}
		check(step)
	}
	if hits < lookups/20 {
		t.Errorf("%d of %d lookups found a message: too few to tell", hits, lookups)
	}
}

// A lookup of the queued messages costs the same with 1,000 ops queued as
// with the queue full (100,000): it runs under the mutex that whatsmeow's
// event handling needs to queue each message. Timed as a ratio of the two,
// each the fastest of three rounds (BenchmarkIndexPending has the numbers).
//
// Before, each lookup scanned the whole queue: about 100 times the cost.
func TestPendingCostIndependentOfQueue(t *testing.T) {
	cost := func(n int) time.Duration {
		w, device := queuedStore(t, n)
		chat := benchMessage("", 0).chat
		best := time.Duration(math.MaxInt64)
		for range 3 {
			start := time.Now()
			for range 1_000 {
				w.pending(device, chat, "3EB0UNKNOWN")
				w.pendingNewest(device, chat)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	small, full := cost(1_000), cost(indexQueueMax)
	t.Logf("full %v, small %v, ratio %.1f", full, small, float64(full)/float64(small))
	if full > 10*small {
		t.Errorf("lookups with the queue full took %v, with 1,000 ops queued %v: %.0f times as long, want about the same",
			full, small, float64(full)/float64(small))
	}
}
