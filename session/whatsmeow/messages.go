package whatsmeow

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// messages is what a [Session] knows of the messages it has seen, for
// sender resolution, LID mapping, skipping its own messages, channel server
// ids and chat-only requests.
//
// A Session made by [New] alone keeps its own bounded index in memory. A
// [Manager]'s sessions share one memory index, bounded for all of them
// ([WithIndexCache]), as a cache in front of the store's bluetick_message
// table ([messageStore]), keyed by the device: what a session saw survives
// a restart, and a process that takes the device over finds it. Lookups by
// id try the cache, then the store; a chat's unread and newest messages
// come from the store.
type messages struct {
	mem    *index        // the session's own index or the shared cache; nil when off
	owner  string        // this session's messages in mem
	store  *messageStore // nil: memory only
	device *store.Device
	log    *slog.Logger

	// stored knows the ids the store certainly does not have, once loaded
	// (on the first lookup the cache cannot answer): a receipt for a message
	// the session never saw (the common case for a direct chat) would
	// otherwise cost a store query in the handler's resolution, another in
	// the send and a write to mark it read. Set with store (the Manager's
	// withStore makes it): a Session made by New links no filter.
	stored idFilter

	key atomic.Pointer[cachedKey] // deviceKey's last answer
}

// newMessages returns the index a Session made with o over device uses.
func newMessages(o options, device *store.Device) *messages {
	switch {
	case o.indexSize == 0:
		return &messages{log: o.logger}
	case o.store != nil:
		return &messages{mem: o.cache, owner: o.owner, store: o.store, stored: o.newFilter(), device: device, log: o.logger}
	}
	return &messages{mem: newIndex(o.indexSize), device: device, log: o.logger}
}

// deviceKey names the session's rows in the store: its device's JID, or ""
// when there is no store or the device is not paired.
func (x *messages) deviceKey() string {
	if x.store == nil || x.device == nil {
		return ""
	}
	id := x.device.ID
	if id == nil {
		return ""
	}
	// whatsmeow replaces the pointer when the device is paired (and clears
	// it on logout), never the JID it points to: the string made for one
	// pointer holds for as long as the device has it.
	if k := x.key.Load(); k != nil && k.id == id {
		return k.key
	}
	k := &cachedKey{id: id, key: id.String()}
	x.key.Store(k)
	return k.key
}

// cachedKey is a device's JID as the store's rows name it.
type cachedKey struct {
	id  *types.JID
	key string
}

// add records a message that just arrived.
func (x *messages) add(m indexed) {
	m.owner = x.owner
	if x.store != nil {
		m.seen = x.store.seenNow()
	}
	x.mem.add(m)
	if d := x.deviceKey(); d != "" {
		x.stored.add(m.id)
		x.store.put(d, m)
	}
}

// addHistory records the messages of a history sync, oldest first. With a
// store they go to the store only: thousands of old messages would push
// the live ones out of the cache.
func (x *messages) addHistory(ms []indexed) {
	if x.store == nil {
		for _, m := range ms {
			m.owner = x.owner
			x.mem.add(m)
		}
		return
	}
	d := x.deviceKey()
	if d == "" {
		return
	}
	ids := make([]string, len(ms))
	for i := range ms {
		ms[i].owner, ms[i].seen = x.owner, x.store.seenNow()
		ids[i] = ms[i].id
	}
	x.stored.add(ids...)
	x.store.put(d, ms...)
}

// markRead records that ids of chat were read.
func (x *messages) markRead(chat string, ids []string) {
	x.mem.markRead(x.owner, chat, ids)
	if d := x.deviceKey(); d != "" {
		if ids = x.stored.maybe(ids); len(ids) > 0 { // no row to mark for the others
			x.store.markRead(d, chat, ids)
		}
	}
}

// get returns the message id of chat (either form of its JID): from the
// cache, else from the store (and then caches it).
func (x *messages) get(ctx context.Context, chat, id string) (indexed, bool, error) {
	if m, ok := x.mem.get(x.owner, chat, id); ok {
		return m, true, nil
	}
	d := x.deviceKey()
	if d == "" {
		return indexed{}, false, nil
	}
	// absent first: a loaded filter answers nearly every lookup under one
	// lock (each request looks its id up twice).
	if x.stored.absent(id) {
		return indexed{}, false, nil
	}
	if !x.stored.loaded() {
		// A failure leaves it unloaded: the query below tells the caller.
		_ = x.stored.load(ctx, func(ctx context.Context) ([]string, error) { return x.store.ids(ctx, d) })
		if x.stored.absent(id) {
			return indexed{}, false, nil
		}
	}
	m, ok, err := x.store.get(ctx, d, chat, id)
	if err != nil || !ok {
		return indexed{}, false, err
	}
	m.owner = x.owner
	x.mem.add(m)
	return m, true, nil
}

// unread returns the newest limit incoming messages of chat not yet read,
// oldest first.
func (x *messages) unread(ctx context.Context, chat string, limit int) ([]indexed, error) {
	if x.store == nil {
		return x.mem.unread(x.owner, chat, limit), nil
	}
	d := x.deviceKey()
	if d == "" {
		return nil, nil
	}
	return x.store.unread(ctx, d, chat, limit)
}

// newest returns the newest message of chat (either form of its JID).
func (x *messages) newest(ctx context.Context, chat string) (indexed, bool, error) {
	if x.store == nil {
		m, ok := x.mem.newest(x.owner, chat)
		return m, ok, nil
	}
	d := x.deviceKey()
	if d == "" {
		return indexed{}, false, nil
	}
	return x.store.newest(ctx, d, chat)
}

// groupMode reports whether the newest known message of group from
// another member was addressed by LID; known is false when none is known.
// A failed store query is logged and taken as unknown.
func (x *messages) groupMode(ctx context.Context, group string) (lid, known bool) {
	if lid, known := x.mem.groupMode(x.owner, group); known {
		return lid, true
	}
	d := x.deviceKey()
	if d == "" {
		return false, false
	}
	lid, known, err := x.store.groupMode(ctx, d, group)
	if err != nil && ctx.Err() == nil {
		x.log.Warn("reading a group's addressing mode from the message index failed", "group", group, "error", err)
	}
	return lid, known
}

// close forgets the session's messages in a shared cache; the store keeps
// them.
func (x *messages) close() {
	if x.owner != "" {
		x.mem.forget(x.owner)
	}
}
