package session_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Three requests for the same chat arriving together go out as one receipt.
func ExampleCoalesce() {
	fake := sessiontest.New()
	c := session.Coalesce(fake.Session("support"), session.CoalesceOptions{
		Window:   time.Second, // wait up to 1 s for more receipts…
		MaxBatch: 3,           // …or until 3 ids wait
	})

	var wg sync.WaitGroup
	for _, id := range []string{"3EB0AA", "3EB0BB", "3EB0CC"} {
		wg.Go(func() {
			_, err := c.SendReceipt(context.Background(), session.Receipt{
				Chat:       "15551234567@s.whatsapp.net",
				MessageIDs: []string{id},
				Type:       session.ReceiptRead,
				Timestamp:  time.Now(),
			})
			if err != nil {
				fmt.Println(err)
			}
		})
	}
	wg.Wait()
	if err := c.Close(context.Background()); err != nil { // at shutdown: sends what waits
		fmt.Println(err)
	}

	for _, r := range fake.Receipts() {
		fmt.Println(r.Chat, slices.Sorted(slices.Values(r.MessageIDs)), r.Type) // in arrival order; sorted here
	}
	st := c.Stats()
	fmt.Printf("%d calls in, %d out\n", st.Calls, st.Sends)
	// Output:
	// 15551234567@s.whatsapp.net [3EB0AA 3EB0BB 3EB0CC] read
	// 3 calls in, 1 out
}

// Dedup around Coalesce around a session: ids sent in the last 24 hours are
// not sent again, and what is left is coalesced.
func ExampleDedup() {
	fake := sessiontest.New()
	c := session.Coalesce(fake.Session("support"), session.CoalesceOptions{Window: 10 * time.Millisecond})
	defer c.Close(context.Background())
	sess := session.Dedup(c, session.DedupOptions{TTL: 24 * time.Hour})
	// reg.Set("support", sess) makes the HTTP handler use it.

	for _, ids := range [][]string{{"3EB0AA", "3EB0BB"}, {"3EB0BB", "3EB0CC"}, {"3EB0AA", "3EB0CC"}} {
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
	for _, r := range fake.Receipts() {
		fmt.Println("sent", r.MessageIDs)
	}
	_, ok := session.As[session.Resolver](sess) // found through the decorators
	fmt.Println("resolver:", ok)
	// Output:
	// asked [3EB0AA 3EB0BB]: duplicates []
	// asked [3EB0BB 3EB0CC]: duplicates [3EB0BB]
	// asked [3EB0AA 3EB0CC]: duplicates [3EB0AA 3EB0CC]
	// sent [3EB0AA 3EB0BB]
	// sent [3EB0CC]
	// resolver: true
}

// Decorate gives every session of a registry its own Dedup and Coalesce,
// made on first use and closed by Close. With an HTTP handler:
// seenhandler.New(d, …), and at shutdown the handler's Shutdown, then
// d.Close, so that the batches still waiting go out.
func ExampleDecorate() {
	fake := sessiontest.New()
	d := session.Decorate(fake.Registry("support"), session.DecorateOptions{
		Coalesce: &session.CoalesceOptions{Window: time.Second, MaxBatch: 3},
		Dedup:    &session.DedupOptions{TTL: 24 * time.Hour},
	})

	var wg sync.WaitGroup
	for _, id := range []string{"3EB0AA", "3EB0BB", "3EB0CC"} {
		wg.Go(func() { // three requests, each looking its session up
			sess, err := d.Lookup(context.Background(), "support")
			if err != nil {
				fmt.Println(err)
				return
			}
			_, err = sess.SendReceipt(context.Background(), session.Receipt{
				Chat:       "15551234567@s.whatsapp.net",
				MessageIDs: []string{id},
				Type:       session.ReceiptRead,
				Timestamp:  time.Now(),
			})
			if err != nil {
				fmt.Println(err)
			}
		})
	}
	wg.Wait()
	if err := d.Close(context.Background()); err != nil { // at shutdown
		fmt.Println(err)
	}

	for _, r := range fake.Receipts() {
		fmt.Println(r.Chat, slices.Sorted(slices.Values(r.MessageIDs)), r.Type)
	}
	st := d.Stats()
	fmt.Printf("%d calls in, %d out\n", st.Calls, st.Sends)
	sess, _ := d.Lookup(context.Background(), "support")
	fmt.Println("undecorated after Close:", sess == session.Session(fake.Session("support")))
	// Output:
	// 15551234567@s.whatsapp.net [3EB0AA 3EB0BB 3EB0CC] read
	// 3 calls in, 1 out
	// undecorated after Close: true
}
