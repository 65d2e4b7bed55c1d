package whatsmeow_test

// Wire tests of how a Session learns a group's addressing mode from
// WhatsApp (GetGroupInfo): a real client over the fake server, assertions
// on the exact nodes.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

// waitingCtx is a context that closes waiting the first time its Done
// channel is asked for: code asks for it only to wait on it, so a request
// made with it has started to wait (for WhatsApp's answer, or for another
// request's) once waiting is closed.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newWaitingCtx() *waitingCtx {
	return &waitingCtx{Context: context.Background(), waiting: make(chan struct{})}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// changeGroup has the server notify a change of group (its subject), as
// WhatsApp does, and waits until the client has dispatched the
// events.GroupInfo, the Session's handler included.
func changeGroup(t *testing.T, w *wire, group string) {
	t.Helper()
	changed := make(chan struct{}, 1)
	id := w.cli.AddEventHandler(func(evt any) { // after the Session's handler
		if e, ok := evt.(*events.GroupInfo); ok && e.JID.String() == group {
			changed <- struct{}{}
		}
	})
	defer w.cli.RemoveEventHandler(id)
	w.srv.Send(t, waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"type": "w:gp2", "id": "GP2CHANGE", "from": jid(group), "participant": jid(memberLID), "t": msgTime,
	}, Content: []waBinary.Node{{Tag: "subject", Attrs: waBinary.Attrs{"subject": "renamed", "s_t": msgTime}}}})
	select {
	case <-changed:
	case <-time.After(wireWait):
		t.Fatal("no events.GroupInfo for the group change")
	}
}

// Twenty requests at once about a LID-addressed group none of whose
// messages is indexed, each naming the sender by phone number: one
// group-info query goes out, the other requests wait for its answer (the
// server holds it until every request waits), and every receipt names the
// member's LID.
//
// Before: 20 queries, one per request, each
// <iq id="…" to="120363088888888888@g.us" type="get" xmlns="w:g2"><query request="interactive"/></iq>
func TestWireGroupInfoOneQueryAtATime(t *testing.T) {
	const (
		lidGroup = "120363088888888888@g.us"
		n        = 20
	)
	w := newWire(t)
	w.srv.SetGroup(fakewa.Group{JID: jid(lidGroup), AddressingMode: "lid", Participants: []fakewa.GroupParticipant{
		{JID: jid(memberLID), PhoneNumber: jid(member)},
	}})
	release := w.srv.HoldGroupInfo(t)
	errs := make(chan error, n)
	var want []string
	var waiting []chan struct{}
	for i := range n {
		id := fmt.Sprintf("3EB0BURST%02d", i)
		want = append(want, `<receipt id="`+id+`" participant="222222222222222@lid" t="1767225600" to="120363088888888888@g.us" type="read"/>`)
		ctx := newWaitingCtx()
		waiting = append(waiting, ctx.waiting)
		go func() {
			_, err := w.session.SendReceipt(ctx, rcpt(lidGroup, member, session.ReceiptRead, id))
			errs <- err
		}()
	}
	for _, c := range waiting {
		select {
		case <-c:
		case <-time.After(wireWait):
			t.Fatal("a request did not get to wait for the group's mode")
		}
	}
	release()
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(wireWait):
			t.Fatal("a request did not end")
		}
	}
	got := xmls(readReceipts(w.sent(t)))
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("receipts\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if queries := groupInfoQueries(w); len(queries) != 1 {
		t.Errorf("%d group-info queries for %d requests at once, want 1:\n%s", len(queries), n, strings.Join(queries, "\n"))
	}
}

// WhatsApp cannot answer a group-info query (an error 500): the receipt
// names the sender by phone number, as before asking, and the failure is
// remembered: the next request asks nothing. A change of the group forgets
// it: the next request asks again, and WhatsApp's answer now gives the
// member's LID.
//
// Before: a group-info query per request (two for the first two).
func TestWireFailedGroupInfoIsRemembered(t *testing.T) {
	const lidGroup = "120363088888888888@g.us"
	w := newWire(t)
	w.srv.SetGroup(fakewa.Group{JID: jid(lidGroup), AddressingMode: "lid", Participants: []fakewa.GroupParticipant{
		{JID: jid(memberLID), PhoneNumber: jid(member)},
	}})
	w.srv.SetGroupInfoErrors(true)
	send := func(id string) {
		t.Helper()
		if _, err := w.session.SendReceipt(context.Background(), rcpt(lidGroup, member, session.ReceiptRead, id)); err != nil {
			t.Fatal(err)
		}
	}
	send("3EB0FAIL1")
	send("3EB0FAIL2")
	if queries := groupInfoQueries(w); len(queries) != 1 {
		t.Errorf("%d group-info queries for two requests, want 1:\n%s", len(queries), strings.Join(queries, "\n"))
	}

	w.srv.SetGroupInfoErrors(false)
	changeGroup(t, w, lidGroup)
	send("3EB0FAIL3")
	if n := len(groupInfoQueries(w)); n != 2 {
		t.Errorf("%d group-info queries after the group changed, want 2", n)
	}
	assertReceipts(t, w,
		`<receipt id="3EB0FAIL1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363088888888888@g.us" type="read"/>`,
		`<receipt id="3EB0FAIL2" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363088888888888@g.us" type="read"/>`,
		`<receipt id="3EB0FAIL3" participant="222222222222222@lid" t="1767225600" to="120363088888888888@g.us" type="read"/>`)
}
