//go:build !race

package session_test

import (
	"context"
	"testing"

	"github.com/bluetick/bluetick/session"
)

// boundSession is a ContextBound Session that sends nothing, behind a
// pointer as real backends are.
type boundSession struct{}

func (*boundSession) SendReceipt(_ context.Context, r session.Receipt) (session.Result, error) {
	return session.Result{Type: r.Type}, nil
}

func (*boundSession) BoundByContext() bool { return true }

// A receipt alone through Decorate's group commit, over a ContextBound
// Session, costs two allocations: its batch (with its opener and the
// members' first slot in it) and the copy of its ids. It cost six when the
// batch made its done channel, its member and the members' slice apart,
// and each Lookup boxed the Session anew. (Not under -race, which
// allocates on its own.)
func TestDecorateLoneReceiptAllocations(t *testing.T) {
	reg := session.NewMemoryRegistry()
	reg.Set("s", &boundSession{})
	d := session.Decorate(reg, session.DecorateOptions{Coalesce: &session.CoalesceOptions{}})
	defer d.Close(context.Background())
	ctx, ids := context.Background(), []string{"A1"}
	n := testing.AllocsPerRun(1000, func() {
		s, err := d.Lookup(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SendReceipt(ctx, session.Receipt{Chat: chatA, MessageIDs: ids, Type: session.ReceiptRead}); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("%v allocations a receipt, want at most 2", n)
	}
}
