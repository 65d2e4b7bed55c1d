package whatsmeow

import (
	"errors"
)

// WithIndexCache sets how many messages a [Manager] keeps in memory in
// front of the store's message index, for all its sessions together: the
// oldest added is forgotten first, and found in the store again when
// needed. Each costs about 500 bytes (see BenchmarkIndexAdd). 0 keeps none:
// every lookup reads the store. A negative n is an error. Default:
// 100,000, about 50 MB.
func WithIndexCache(n int) Option {
	return func(o *options) error {
		o.forOpen("WithIndexCache")
		if n < 0 {
			return errors.New("whatsmeow: WithIndexCache: negative size")
		}
		o.cacheSize = n
		return nil
	}
}

// WithIndexRetention sets how much of each session's message index the
// store keeps (see [Retention] for the defaults of its zero fields): a
// [Manager] writes the messages its sessions see to the store's
// bluetick_message table, in batches from a goroutine of its own, and
// prunes it after every 1,000 messages of a session and hourly. A negative
// field is an error.
func WithIndexRetention(r Retention) Option {
	return func(o *options) error {
		o.forOpen("WithIndexRetention")
		if r.MaxMessages < 0 || r.MaxAge < 0 {
			return errors.New("whatsmeow: WithIndexRetention: negative field")
		}
		o.retention = r
		return nil
	}
}

// withStore makes a [Session] keep its message index in store, with cache
// (shared with the Manager's other sessions) in front, its messages there
// named owner.
func withStore(store *messageStore, cache *index, owner string) Option {
	return func(o *options) error {
		o.store, o.cache, o.owner = store, cache, owner
		o.newFilter = func() idFilter { return new(storedIDs) }
		return nil
	}
}
