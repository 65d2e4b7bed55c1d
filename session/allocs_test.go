//go:build !race

package session_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/session"
)

// boundSession is a ContextBound Session that sends nothing, behind a
// pointer as real backends are.
type boundSession struct{}

func (*boundSession) SendReceipt(_ context.Context, r session.Receipt) (session.Result, error) {
	return session.Result{Type: r.Type}, nil
}

func (*boundSession) BoundByContext() bool { return true }

// A receipt through Decorate's group commit, over a ContextBound Session,
// when nothing for its chat is in flight: one whose chat's previous
// receipt came long before (nothing to gather: the spread workload of
// BenchmarkEndToEnd) goes as it is, with no allocation; one that follows
// its chat's previous receipt closely, and so yields for others to join
// its batch first, costs two: its batch (with its opener and the members'
// first slot in it) and the copy of its ids. (It cost six when the batch
// made its done channel, its member and the members' slice apart, and each
// Lookup boxed the Session anew.) Not under -race, which allocates on its
// own.
func TestDecorateLoneReceiptAllocations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apart time.Duration // between a chat's receipts
		max   float64
	}{
		{"apart", time.Second, 0},
		{"close behind", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
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
					time.Sleep(tc.apart)
				})
				if n > tc.max {
					t.Errorf("%v allocations a receipt, want at most %v", n, tc.max)
				}
			})
		})
	}
}
