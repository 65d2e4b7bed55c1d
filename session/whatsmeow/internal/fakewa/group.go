package fakewa

import (
	"strconv"
	"sync"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// groupCreated is the creation time every group of the fake answers with
// (2026-01-01T00:00:00Z).
const groupCreated = 1767225600

// Group is a group the server answers group-info queries about (whatsmeow's
// GetGroupInfo: <iq xmlns="w:g2" type="get" to="…@g.us"><query
// request="interactive"/></iq>).
type Group struct {
	// JID is the group's JID (…@g.us).
	JID types.JID
	// AddressingMode is the group's addressing_mode attribute: "lid", "pn",
	// or "" for none.
	AddressingMode string
	// Participants are the group's members.
	Participants []GroupParticipant
}

// GroupParticipant is a member of a Group: a <participant> with jid and,
// for a LID member whose phone number the server shares, phone_number (or,
// for a phone-number member, lid).
type GroupParticipant struct {
	JID         types.JID
	PhoneNumber types.JID // with a LID JID; empty for none
	LID         types.JID // with a phone-number JID; empty for none
}

// SetGroup makes the server answer group-info queries about g.JID with g,
// replacing an earlier g of the same JID. A query about a group the server
// does not know is answered as WhatsApp answers it:
// <iq type="error"><error code="404" text="item-not-found"/></iq>.
func (s *Server) SetGroup(g Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups == nil {
		s.groups = make(map[types.JID]Group)
	}
	g.Participants = append([]GroupParticipant(nil), g.Participants...)
	s.groups[g.JID] = g
}

func (s *Server) group(jid types.JID) (Group, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[jid]
	return g, ok
}

// SetGroupInfoErrors makes the server answer every group-info query with
// <iq type="error"><error code="500" text="internal-server-error"/></iq>,
// as WhatsApp does when it cannot answer (whatsmeow's GetGroupInfo then
// fails with an IQError), or, with false, answer them again.
func (s *Server) SetGroupInfoErrors(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.groupInfoErrors = on
}

// heldReply is an answer HoldGroupInfo keeps back, and the connection it
// is for.
type heldReply struct {
	c     *conn
	reply waBinary.Node
}

// HoldGroupInfo makes the server keep back its answers to group-info
// queries (recording the queries as usual) until release is called, which
// sends the answers kept, in order, and answers later queries at once
// again: a test can have several callers waiting for one answer. release
// may be called more than once; t's cleanup calls it.
func (s *Server) HoldGroupInfo(t testing.TB) (release func()) {
	s.mu.Lock()
	s.held = new([]heldReply)
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			held := *s.held
			s.held = nil
			s.mu.Unlock()
			for _, h := range held {
				if err := h.c.send(s.ctx, h.reply); err != nil {
					h.c.log.Debugf("send held group info: %v", err)
				}
			}
		})
	}
	t.Cleanup(release)
	return release
}

// hold keeps reply, the answer to a group-info query on c, back if
// HoldGroupInfo asked for it, and reports whether it did.
func (s *Server) hold(c *conn, reply waBinary.Node) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return false
	}
	*s.held = append(*s.held, heldReply{c, reply})
	return true
}

// answerGroupInfo fills reply, the answer to a group-info query n: the
// <group> node whatsmeow's parseGroupNode reads, a 404 for a group the
// server does not know, or a 500 while SetGroupInfoErrors is on.
func (c *conn) answerGroupInfo(n waBinary.Node, reply *waBinary.Node) {
	to, _ := n.Attrs["to"].(types.JID)
	reply.Attrs["from"] = to
	if c.srv.settings().groupInfoErrors {
		reply.Attrs["type"] = "error"
		reply.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "500", "text": "internal-server-error"}}}
		return
	}
	g, ok := c.srv.group(to)
	if !ok {
		reply.Attrs["type"] = "error"
		reply.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"}}}
		return
	}
	attrs := waBinary.Attrs{
		"id":       g.JID.User,
		"creation": strconv.Itoa(groupCreated),
		"subject":  "fakewa group",
		"size":     strconv.Itoa(len(g.Participants)),
	}
	if g.AddressingMode != "" {
		attrs["addressing_mode"] = g.AddressingMode
	}
	parts := make([]waBinary.Node, len(g.Participants))
	for i, p := range g.Participants {
		pa := waBinary.Attrs{"jid": p.JID}
		if !p.PhoneNumber.IsEmpty() {
			pa["phone_number"] = p.PhoneNumber
		}
		if !p.LID.IsEmpty() {
			pa["lid"] = p.LID
		}
		parts[i] = waBinary.Node{Tag: "participant", Attrs: pa}
	}
	reply.Content = []waBinary.Node{{Tag: "group", Attrs: attrs, Content: parts}}
}

// isGroupInfoQuery reports whether n is whatsmeow's GetGroupInfo query.
func isGroupInfoQuery(n waBinary.Node) bool {
	if n.Attrs["xmlns"] != "w:g2" || n.Attrs["type"] != "get" {
		return false
	}
	q, ok := n.GetOptionalChildByTag("query")
	return ok && q.Attrs["request"] == "interactive"
}
