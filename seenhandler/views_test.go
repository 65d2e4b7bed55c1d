package seenhandler_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/session"
)

// viewRecorder records what an Observer's MessageViewed is told.
type viewRecorder struct {
	mu    sync.Mutex
	views []seenhandler.ViewInfo
}

// observer is the Observer that records into v.
func (v *viewRecorder) observer() seenhandler.Observer {
	return seenhandler.Observer{MessageViewed: v.messageViewed}
}

func (v *viewRecorder) messageViewed(_ context.Context, i seenhandler.ViewInfo) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.views = append(v.views, i)
}

func (v *viewRecorder) got() []seenhandler.ViewInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]seenhandler.ViewInfo(nil), v.views...)
}

// The time to view of each message whose time the session knows, from its
// timestamp to the receipt's, synchronous and queued; unknown messages and
// the account's own are not observed.
func TestTimeToView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &viewRecorder{}
		h, fake, _ := newAsyncHandler(t, queue.Options{MinDelay: time.Second, MaxDelay: time.Second}, seenhandler.WithObserver(obs.observer()))
		fake.AddMessage("demo", session.Message{Chat: user, ID: "V1", Sender: user, Timestamp: fixedNow.Add(-2 * time.Minute)})
		fake.AddMessage("demo", session.Message{Chat: user, ID: "V2", Sender: user, Timestamp: fixedNow.Add(-time.Hour)})
		fake.AddMessage("demo", session.Message{Chat: user, ID: "OWN", FromMe: true, Timestamp: fixedNow.Add(-time.Hour)})
		w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["V1","UNKNOWN","OWN"]}`}.do(t, h)
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		want := []seenhandler.ViewInfo{{Session: "demo", Type: session.ReceiptRead, TimeToView: 2 * time.Minute}}
		if got := obs.got(); len(got) != 1 || got[0] != want[0] {
			t.Errorf("views %+v, want %+v", got, want)
		}
		w = request{body: `{"session":"demo","chatId":"15551234567","messageIds":["V2"],"type":"played","async":true}`}.do(t, h)
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		want = append(want, seenhandler.ViewInfo{Session: "demo", Type: session.ReceiptPlayed, TimeToView: time.Hour})
		if got := obs.got(); len(got) != 2 || got[1] != want[1] {
			t.Errorf("views %+v, want %+v", got, want)
		}
	})
}
