package session_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Decorate gives every session of a registry its own dedup and coalescing,
// made on first use and closed by Close: ids sent in the last 24 hours are
// not sent again, and receipts for one chat that arrive while one is being
// sent go out together. With an HTTP handler: seenhandler.New(d, …), and at
// shutdown the handler's Shutdown, then d.Close, so that the batches still
// waiting go out.
func ExampleDecorate() {
	fake := sessiontest.New()
	d := session.Decorate(fake.Registry("support"), session.DecorateOptions{
		Coalesce: &session.CoalesceOptions{MaxBatch: 100},
		Dedup:    &session.DedupOptions{TTL: 24 * time.Hour},
	})

	for _, ids := range [][]string{{"3EB0AA", "3EB0BB"}, {"3EB0BB", "3EB0CC"}, {"3EB0AA", "3EB0CC"}} {
		sess, err := d.Lookup(context.Background(), "support") // as each request does
		if err != nil {
			fmt.Println(err)
			return
		}
		res, err := sess.SendReceipt(context.Background(), session.Receipt{
			Chat:       "15551234567@s.whatsapp.net",
			MessageIDs: ids,
			Type:       session.ReceiptRead,
			Timestamp:  time.Now(),
		})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("asked %v: duplicates %v\n", ids, res.Duplicates)
	}
	if err := d.Close(context.Background()); err != nil { // at shutdown
		fmt.Println(err)
	}

	for _, r := range fake.Receipts() {
		fmt.Println("sent", r.MessageIDs)
	}
	st := d.Stats()
	fmt.Printf("%d calls in, %d out\n", st.Calls, st.Sends)
	sess, _ := d.Lookup(context.Background(), "support")
	fmt.Println("undecorated after Close:", sess == session.Session(fake.Session("support")))
	// Output:
	// asked [3EB0AA 3EB0BB]: duplicates []
	// asked [3EB0BB 3EB0CC]: duplicates [3EB0BB]
	// asked [3EB0AA 3EB0CC]: duplicates [3EB0AA 3EB0CC]
	// sent [3EB0AA 3EB0BB]
	// sent [3EB0CC]
	// 2 calls in, 2 out
	// undecorated after Close: true
}
