package whatsmeow

import (
	"container/list"
	"sync"
	"time"
)

// defaultIndexSize is how many messages a session's own index remembers
// by default (a [Session] made by [New]); the oldest is forgotten first.
const defaultIndexSize = 10_000

// indexed is what the index knows of one message.
type indexed struct {
	owner     string // the session whose message it is, in a shared index
	chat      string // normalised chat JID
	chatAlt   string // the chat's other form (PN ↔ LID) in direct chats, or ""
	id        string
	sender    string // normalised, no device
	senderAlt string // the sender's other form (PN ↔ LID), or ""
	fromMe    bool
	timestamp time.Time
	played    bool  // a voice note or view-once media: takes a played receipt
	serverID  int64 // a channel message's server id, or 0
	lidGroup  bool  // the group addresses its members by LID
	read      bool  // a read or played receipt went out, or another device read or played it
	seen      int64 // when the store was given it, Unix ns: the order of messages of the same time
	// olderHistory: from a history sync of older history (see
	// indexHistory), recorded only if the index does not know the message:
	// what it knows, its read mark above all, is more recent.
	olderHistory bool
}

type indexKey struct{ owner, chat, id string }

type groupKey struct{ owner, group string }

// index is a bounded, concurrency-safe record of the messages sessions have
// seen: the messages are in the order they were added, and each is
// reachable from every form of its chat's JID. Messages belong to an owner
// (a session): one index may serve all of a [Manager]'s sessions under one
// bound, as a cache in front of the store (see messages), or one session
// alone (owner ""). The bound counts messages, whatever their owner; the
// oldest added is forgotten first.
type index struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *indexed, oldest first
	byKey map[indexKey]*list.Element
	// groups counts each group's indexed messages and remembers whether
	// the newest from another member was addressed by LID.
	groups map[groupKey]*groupInfo
}

// groupInfo is what the index knows of a group. Only others' messages tell
// its addressing: the account's own carry its phone number in history
// syncs whatever the group's addressing.
type groupInfo struct {
	messages int // indexed messages of the group
	others   int // of them, from other members
	lid      bool
	newest   time.Time // of the message lid was taken from
}

func newIndex(max int) *index {
	return &index{max: max, order: list.New(), byKey: make(map[indexKey]*list.Element), groups: make(map[groupKey]*groupInfo)}
}

func (x *index) keys(m *indexed) []indexKey {
	keys := []indexKey{{m.owner, m.chat, m.id}}
	if m.chatAlt != "" && m.chatAlt != m.chat {
		keys = append(keys, indexKey{m.owner, m.chatAlt, m.id})
	}
	return keys
}

// add records m, replacing an earlier record of the same message (whose
// read mark and alternate forms it keeps) unless m is olderHistory, and
// forgets the oldest messages beyond the bound.
func (x *index) add(m indexed) {
	if x == nil || x.max <= 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.byKey[indexKey{m.owner, m.chat, m.id}]; ok {
		if m.olderHistory {
			return
		}
		old := e.Value.(*indexed)
		m = merged(*old, m)
		x.remove(e)
	}
	e := x.order.PushBack(&m)
	for _, k := range x.keys(&m) {
		x.byKey[k] = e
	}
	if isGroup(m.chat) {
		gk := groupKey{m.owner, m.chat}
		g := x.groups[gk]
		if g == nil {
			g = &groupInfo{}
			x.groups[gk] = g
		}
		g.messages++
		if !m.fromMe {
			g.others++
			if !m.timestamp.Before(g.newest) {
				g.lid, g.newest = m.lidGroup, m.timestamp
			}
		}
	}
	for x.order.Len() > x.max {
		x.remove(x.order.Front())
	}
}

// merged is m recorded again over old: read stays read, and a form of the
// chat or sender that old knew and m does not is kept.
func merged(old, m indexed) indexed {
	m.read = m.read || old.read
	if m.chatAlt == "" {
		m.chatAlt = old.chatAlt
	}
	if m.senderAlt == "" {
		m.senderAlt = old.senderAlt
	}
	return m
}

func (x *index) remove(e *list.Element) {
	m := e.Value.(*indexed)
	for _, k := range x.keys(m) {
		if x.byKey[k] == e {
			delete(x.byKey, k)
		}
	}
	gk := groupKey{m.owner, m.chat}
	if g := x.groups[gk]; g != nil {
		if !m.fromMe {
			g.others--
		}
		if g.messages--; g.messages == 0 {
			delete(x.groups, gk)
		}
	}
	x.order.Remove(e)
}

// clear drops every message.
func (x *index) clear() {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.order.Init()
	clear(x.byKey)
	clear(x.groups)
}

// forget drops every message of owner.
func (x *index) forget(owner string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for e := x.order.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*indexed).owner == owner {
			x.remove(e)
		}
		e = next
	}
}

// get returns a copy of owner's message id in chat (either form of its
// JID).
func (x *index) get(owner, chat, id string) (indexed, bool) {
	if x == nil {
		return indexed{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.byKey[indexKey{owner, chat, id}]
	if !ok {
		return indexed{}, false
	}
	return *e.Value.(*indexed), true
}

// markRead records that owner's ids of chat were read.
func (x *index) markRead(owner, chat string, ids []string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if e, ok := x.byKey[indexKey{owner, chat, id}]; ok {
			e.Value.(*indexed).read = true
		}
	}
}

// unread returns owner's newest limit incoming messages of chat not yet
// read, oldest first. It scans every message of the index: it serves a
// session's own index, not the cache a Manager's sessions share.
func (x *index) unread(owner, chat string, limit int) []indexed {
	if x == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []indexed
	for e := x.order.Back(); e != nil && len(out) < limit; e = e.Prev() {
		m := e.Value.(*indexed)
		if m.owner == owner && (m.chat == chat || m.chatAlt == chat) && !m.fromMe && !m.read {
			out = append(out, *m)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// newest returns owner's newest indexed message of chat (either form of its
// JID). Like unread, it scans the index.
func (x *index) newest(owner, chat string) (indexed, bool) {
	if x == nil {
		return indexed{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for e := x.order.Back(); e != nil; e = e.Prev() {
		if m := e.Value.(*indexed); m.owner == owner && (m.chat == chat || m.chatAlt == chat) {
			return *m, true
		}
	}
	return indexed{}, false
}

// groupMode reports whether owner's newest indexed message of group from
// another member was addressed by LID; known is false when the index holds
// none.
func (x *index) groupMode(owner, group string) (lid, known bool) {
	if x == nil {
		return false, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	g := x.groups[groupKey{owner, group}]
	if g == nil || g.others == 0 {
		return false, false
	}
	return g.lid, true
}
