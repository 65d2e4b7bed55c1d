package seenhandler_test

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// Queued read receipts are checked again when they are due: messages the
// account read meanwhile (on another of its devices: the Fake's message
// added again with Read) are not sent, whether a request (async) or
// auto-read queued them; the others of the receipt are. A receipt left with
// nothing to send leaves the queue as sent. Played receipts are not
// checked: a voice note read is not played.
func TestQueuedReceiptsSkipWhatWasReadMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &sessiontest.Arrivals{}
		h, fake, w := newAsyncHandler(t, queue.Options{MinDelay: time.Second, MaxDelay: time.Second, Arrivals: src})
		for _, id := range []string{"Q1", "Q2", "AR1", "V1"} {
			fake.AddMessage("demo", session.Message{Chat: user, ID: id, Sender: user})
		}
		if rec := (request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["Q1","Q2"],"async":true}`}).do(t, h); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec := (request{path: seenhandler.PathWawp, body: `{"session":"demo","chatId":"15551234567","messageIds":["V1"],"type":"played","async":true}`}).do(t, h); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		src.Emit("demo", session.Arrival{Chat: user, Sender: user, ID: "AR1", Timestamp: time.Now(), Due: time.Now().Add(2 * time.Second)})
		synctest.Wait()
		if st := totalsOf(t, w); st != (totals{Accepted: 3, Pending: 3}) {
			t.Fatalf("stats %+v", st)
		}

		// The phone reads Q1, the arrival and the voice note.
		for _, id := range []string{"Q1", "AR1", "V1"} {
			fake.AddMessage("demo", session.Message{Chat: user, ID: id, Sender: user, Read: true})
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		var sent [][]string
		for _, r := range fake.Receipts() {
			sent = append(sent, append([]string{string(r.Type)}, r.MessageIDs...))
		}
		if len(sent) != 2 || len(sent[0]) != 2 || sent[0][0] != "read" || sent[0][1] != "Q2" ||
			len(sent[1]) != 2 || sent[1][0] != "played" || sent[1][1] != "V1" {
			t.Errorf("sent %v, want [read Q2] [played V1]", sent)
		}
		if st := totalsOf(t, w); st != (totals{Accepted: 3, Sent: 3}) {
			t.Errorf("stats %+v", st)
		}
	})
}
