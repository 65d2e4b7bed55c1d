package seenhandler

import (
	"context"
	"testing"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// askChatRead leaves no operation set on the exchange when the session
// cannot mark chats read, so that a later panic is not reported as a
// mark_chat_read failure; nor when it can.
func TestAskChatReadLeavesNoOp(t *testing.T) {
	h, err := New(session.NewMemoryRegistry(), WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{session: "demo", chatID: "15551234567@s.whatsapp.net"}
	fake := sessiontest.New()
	for name, sess := range map[string]session.Session{
		"plain session":   session.SessionFunc(fake.Session("demo").SendReceipt),
		"marking session": fake.Session("demo"),
	} {
		x := &exchange{}
		_, _ = h.askChatRead(context.Background(), x, sess, p, session.ChatRead{Chat: p.chatID})
		if x.op != "" {
			t.Errorf("%s: x.op = %q after askChatRead, want none", name, x.op)
		}
	}
}
