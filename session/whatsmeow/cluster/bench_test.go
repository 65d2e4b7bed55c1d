package cluster_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// BenchmarkForward compares a request served by the session's owner with
// the same request sent to another node, which forwards it (one more HTTP
// hop on loopback, signed). Two nodes on Postgres, fake devices. The
// ratio is Forwarded over Local: last measured 1.57× (492 against 314 µs);
// examples/BENCHMARKS.md.
func BenchmarkForward(b *testing.B) {
	w := newWorld(2)
	dsn := pgtest.New(b)
	a := startMember(b, w, dsn, "node-a")
	c := startMember(b, w, dsn, "node-b")
	owners := settle(b, w, []*member{a, c}, 10*testTTL)
	name := w.names[0]
	owner, other := a, c
	if owners[name] != a.id {
		owner, other = c, a
	}
	body := `{"session":"` + name + `","chatId":"15551234567@c.us","messageIds":["3EB0AA"]}`
	for _, bc := range []struct {
		label string
		m     *member
	}{{"Local", owner}, {"Forwarded", other}} {
		b.Run(bc.label, func(b *testing.B) {
			client := &http.Client{}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Post(bc.m.srv.URL+"/api/sendSeen", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 201 { // WAHA's path answers 201, as WAHA
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
