package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
)

func TestStoredIDsFilter(t *testing.T) {
	ctx := context.Background()
	var s storedIDs
	if s.loaded() || s.absent("A") || len(s.maybe([]string{"A", "B"})) != 2 {
		t.Fatal("an unloaded filter rules out ids")
	}
	if err := s.load(ctx, func(context.Context) ([]string, error) { return nil, errors.New("store down") }); err == nil || s.loaded() {
		t.Fatalf("load with a failing list = %v, loaded %v", err, s.loaded())
	}
	err := s.load(ctx, func(context.Context) ([]string, error) {
		s.add("MEANTIME") // indexed while the store is listed
		if err := s.load(ctx, func(context.Context) ([]string, error) {
			t.Error("a second load ran while the first one was loading")
			return nil, nil
		}); err != nil {
			t.Error(err)
		}
		return []string{"STORED"}, nil
	})
	if err != nil || !s.loaded() {
		t.Fatalf("load = %v, loaded %v", err, s.loaded())
	}
	s.add("LATER")
	for _, id := range []string{"STORED", "MEANTIME", "LATER"} {
		if s.absent(id) {
			t.Errorf("%s is ruled out", id)
		}
	}
	absent := 0
	for i := range 1000 {
		if s.absent(fmt.Sprintf("3EB0%016X", i)) {
			absent++
		}
	}
	if absent < 950 { // a false positive rate of 1% at capacity; far below it here
		t.Errorf("%d of 1,000 unseen ids ruled out, want nearly all", absent)
	}
	if got := s.maybe([]string{"UNSEEN-1", "STORED", "UNSEEN-2"}); len(got) != 1 || got[0] != "STORED" {
		t.Errorf("maybe = %q, want [STORED]", got)
	}
	for i := range storedIDsMin * 2 {
		s.add(fmt.Sprintf("FLOOD%d", i))
	}
	if s.loaded() || s.absent("UNSEEN-1") {
		t.Error("a filter past its capacity still rules ids out; want it dropped until the next load")
	}
}

// TestStoredIDs: once the session has listed its device's ids, a receipt
// for a message the store does not have costs no store query, while one it
// has is still found there.
func TestStoredIDs(t *testing.T) {
	ForEachStore(t, func(t *testing.T, st TestStore) {
		ctx := context.Background()
		st.SaveDevice(t, "15550000010")
		w, db := openMessageStore(t, st.DSN, Retention{})
		defer w.close()
		dev := deviceWith(types.NewADJID("15550000010", 0, 1))
		const dm = "15551234567@s.whatsapp.net"
		before := newMessages(storeOptions(w, newIndex(1), "1"), dev)
		before.add(indexed{chat: dm, id: "OLD", sender: dm, timestamp: time.Unix(1767225500, 0)})
		before.close()
		// The process restarts: the store has OLD, the cache nothing.
		x := newMessages(storeOptions(w, newIndex(1), "1"), dev)
		if _, ok, err := x.get(ctx, dm, "NEVER"); ok || err != nil {
			t.Fatalf("get of an unknown id = %v, %v", ok, err)
		}
		if !x.stored.loaded() {
			t.Fatal("the first lookup the cache could not answer did not load the stored ids")
		}
		if m, ok, err := x.get(ctx, dm, "OLD"); !ok || err != nil || m.id != "OLD" {
			t.Fatalf("get of a stored id = %+v, %v, %v", m, ok, err)
		}
		x.add(indexed{chat: dm, id: "NEW", sender: dm, timestamp: time.Unix(1767225600, 0)})
		x.add(indexed{chat: dm, id: "NEWER", sender: dm, timestamp: time.Unix(1767225700, 0)}) // NEW leaves the cache
		if m, ok, err := x.get(ctx, dm, "NEW"); !ok || err != nil || m.id != "NEW" {
			t.Fatalf("get of an id indexed after the load = %+v, %v, %v", m, ok, err)
		}
		x.addHistory([]indexed{{chat: dm, id: "HIST", sender: dm, timestamp: time.Unix(1767225400, 0)}})
		if m, ok, err := x.get(ctx, dm, "HIST"); !ok || err != nil || m.id != "HIST" {
			t.Fatalf("get of an id of a history sync = %+v, %v, %v", m, ok, err)
		}
		w.mu.Lock()
		queued := w.queued
		w.mu.Unlock()
		x.markRead(dm, []string{"NEVER", "ALSO-NEVER"})
		w.mu.Lock()
		after := w.queued
		w.mu.Unlock()
		if after != queued {
			t.Errorf("marking unknown ids read queued %d writes, want none", after-queued)
		}
		if err := w.flush(ctx); err != nil {
			t.Fatal(err)
		}
		// With the database gone, an unknown id is still answered: from the
		// filter, without a query.
		db.Close()
		if _, ok, err := x.get(ctx, dm, "UNSEEN"); ok || err != nil {
			t.Errorf("get of an unknown id with the database closed = %v, %v; want not found without a query", ok, err)
		}
	})
}

// storeOptions are the options withStore gives a Manager's session: its
// index in w, behind cache, as owner.
func storeOptions(w *messageStore, cache *index, owner string) options {
	o := options{indexSize: 1}
	_ = withStore(w, cache, owner)(&o)
	return o
}

// An id the filter ruled out, asked about again and again (a request asks
// about its id up to three times), may be stored as soon as it is added.
func TestStoredIDsMissesUntilAdded(t *testing.T) {
	var s storedIDs
	if err := s.load(context.Background(), func(context.Context) ([]string, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 768)
	for i := range ids {
		ids[i] = fmt.Sprintf("3EB0MISS%08X", i)
	}
	for range 2 {
		for _, id := range ids {
			if !s.absent(id) {
				t.Fatalf("%s, never added, may be stored", id) // no false positive among these, at this size
			}
		}
	}
	s.add(ids[0], ids[len(ids)-1])
	for _, id := range []string{ids[0], ids[len(ids)-1]} {
		if s.absent(id) {
			t.Errorf("%s was added, and is still ruled out", id)
		}
		if got := s.maybe([]string{id}); len(got) != 1 {
			t.Errorf("maybe(%s) = %q after it was added", id, got)
		}
	}
}
