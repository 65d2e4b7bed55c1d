package whatsmeow

import (
	"context"
	"sync"
)

// Bounds of a session's storedIDs filter.
const (
	// storedIDsMin is the fewest ids a filter is sized for (about 5.4 KiB).
	storedIDsMin = 4096
	// storedIDsFP bounds the filter's false-positive rate at its capacity:
	// the share of unseen ids that still cost a store query. idsPerBlock
	// is chosen for it.
	storedIDsFP = 0.01
)

// idFilter is what a session's index asks of its [storedIDs]. It is an
// interface so that only a [Manager] (withStore) makes one: a Session made
// by New, which has no store, keeps no Bloom filter.
type idFilter interface {
	add(ids ...string)
	loaded() bool
	absent(id string) bool
	maybe(ids []string) []string
	load(ctx context.Context, list func(context.Context) ([]string, error)) error
}

// storedIDs knows which message ids a session's rows in the store's
// bluetick_message may hold: a Bloom filter ([blockFilter]) of the ids in
// the store, kept up to date as the session indexes messages. An id it has
// not got is certainly not in the store, so a receipt for a message the
// session never saw (the common case for a direct chat) costs no store
// query, in the handler's resolution, the send or the read mark.
//
// The filter is authoritative only once loaded: load flushes the store's
// writer, reads the device's ids and adds those indexed meanwhile. Until
// then, and again after the ids added since outgrow the filter's capacity
// (it is then dropped, and the next load sizes a new one from the store),
// every id may be stored. Ids pruned from the store stay in the filter:
// they cost a query, as a false positive does. It is safe for concurrent
// use.
type storedIDs struct {
	loading sync.Mutex // held by the one goroutine loading; others do not wait

	mu       sync.Mutex
	filter   *blockFilter // nil until loaded
	capacity int          // ids filter was sized for
	n        int          // ids in filter
	meantime []string     // ids added while loading; nil when not loading
}

// add records ids indexed now (queued for the store's writer).
func (s *storedIDs) add(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meantime != nil {
		s.meantime = append(s.meantime, ids...)
	}
	if s.filter == nil {
		return
	}
	if s.n+len(ids) > s.capacity { // beyond it, false positives grow: load anew
		s.filter, s.capacity, s.n = nil, 0, 0
		return
	}
	for _, id := range ids {
		s.filter.add(id)
	}
	s.n += len(ids)
}

// loaded reports whether the filter is authoritative.
func (s *storedIDs) loaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filter != nil
}

// absent reports whether id is certainly not in the store.
func (s *storedIDs) absent(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.absentLocked(id)
}

// absentLocked is absent with s.mu held.
func (s *storedIDs) absentLocked(id string) bool {
	return s.filter != nil && !s.filter.has(id)
}

// maybe returns those of ids that may be in the store: all of them until
// the filter is loaded.
func (s *storedIDs) maybe(ids []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.filter == nil {
		return ids
	}
	var out []string
	for _, id := range ids {
		if !s.absentLocked(id) {
			out = append(out, id)
		}
	}
	return out
}

// load fills the filter from list, which returns the device's ids in the
// store once every write queued before the call has been written. When
// another goroutine is loading, or the filter is loaded, it does nothing.
// A failed list leaves the filter unloaded and is returned.
func (s *storedIDs) load(ctx context.Context, list func(context.Context) ([]string, error)) error {
	if !s.loading.TryLock() {
		return nil
	}
	defer s.loading.Unlock()
	s.mu.Lock()
	if s.filter != nil {
		s.mu.Unlock()
		return nil
	}
	s.meantime = []string{} // what add records from now is not necessarily listed
	s.mu.Unlock()

	ids, err := list(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	meantime := s.meantime
	s.meantime = nil
	if err != nil {
		return err
	}
	n := len(ids) + len(meantime)
	capacity := max(storedIDsMin, 2*n)
	f := newBlockFilter(capacity)
	for _, id := range ids {
		f.add(id)
	}
	for _, id := range meantime {
		f.add(id)
	}
	s.filter, s.capacity, s.n = f, capacity, n
	return nil
}
