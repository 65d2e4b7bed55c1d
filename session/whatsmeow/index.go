package whatsmeow

import (
	"container/list"
	"sync"
	"time"
)

// DefaultIndexSize is how many messages a session's index remembers by
// default; the oldest is forgotten first.
const DefaultIndexSize = 10_000

// indexed is what the index knows of one message.
type indexed struct {
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
	read      bool  // a read receipt went out, or another device read it
}

type indexKey struct{ chat, id string }

// index is a bounded, concurrency-safe record of the messages a session has
// seen: the messages are in arrival order, and each is reachable from every
// form of its chat's JID.
type index struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *indexed, oldest first
	byKey map[indexKey]*list.Element
	// groups counts each group's indexed messages and remembers whether
	// its newest one was addressed by LID.
	groups map[string]*groupInfo
}

type groupInfo struct {
	messages int
	lid      bool
}

func newIndex(max int) *index {
	return &index{max: max, order: list.New(), byKey: make(map[indexKey]*list.Element), groups: make(map[string]*groupInfo)}
}

func (x *index) keys(m *indexed) []indexKey {
	keys := []indexKey{{m.chat, m.id}}
	if m.chatAlt != "" && m.chatAlt != m.chat {
		keys = append(keys, indexKey{m.chatAlt, m.id})
	}
	return keys
}

// add records m, replacing an earlier record of the same message, and
// forgets the oldest messages beyond the bound.
func (x *index) add(m indexed) {
	if x.max <= 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.byKey[indexKey{m.chat, m.id}]; ok {
		old := e.Value.(*indexed)
		m.read = m.read || old.read
		x.remove(e)
	}
	e := x.order.PushBack(&m)
	for _, k := range x.keys(&m) {
		x.byKey[k] = e
	}
	if isGroup(m.chat) {
		g := x.groups[m.chat]
		if g == nil {
			g = &groupInfo{}
			x.groups[m.chat] = g
		}
		g.messages++
		g.lid = m.lidGroup
	}
	for x.order.Len() > x.max {
		x.remove(x.order.Front())
	}
}

func (x *index) remove(e *list.Element) {
	m := e.Value.(*indexed)
	for _, k := range x.keys(m) {
		if x.byKey[k] == e {
			delete(x.byKey, k)
		}
	}
	if g := x.groups[m.chat]; g != nil {
		if g.messages--; g.messages == 0 {
			delete(x.groups, m.chat)
		}
	}
	x.order.Remove(e)
}

// get returns a copy of the message id in chat (either form of its JID).
func (x *index) get(chat, id string) (indexed, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.byKey[indexKey{chat, id}]
	if !ok {
		return indexed{}, false
	}
	return *e.Value.(*indexed), true
}

// markRead records that the ids of chat were read.
func (x *index) markRead(chat string, ids []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if e, ok := x.byKey[indexKey{chat, id}]; ok {
			e.Value.(*indexed).read = true
		}
	}
}

// unread returns the newest limit incoming messages of chat not yet read,
// oldest first.
func (x *index) unread(chat string, limit int) []indexed {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []indexed
	for e := x.order.Back(); e != nil && len(out) < limit; e = e.Prev() {
		m := e.Value.(*indexed)
		if (m.chat == chat || m.chatAlt == chat) && !m.fromMe && !m.read {
			out = append(out, *m)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// newest returns the newest indexed message of chat (either form of its
// JID).
func (x *index) newest(chat string) (indexed, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for e := x.order.Back(); e != nil; e = e.Prev() {
		if m := e.Value.(*indexed); m.chat == chat || m.chatAlt == chat {
			return *m, true
		}
	}
	return indexed{}, false
}

// groupMode reports whether the newest indexed message of group was
// addressed by LID; known is false when the index holds no message of it.
func (x *index) groupMode(group string) (lid, known bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	g := x.groups[group]
	if g == nil {
		return false, false
	}
	return g.lid, true
}
