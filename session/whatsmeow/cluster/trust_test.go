package cluster_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/pgtest"
)

// A node believes only answers sealed with the cluster secret: when
// something else answers at the owner's advertised URL, its 200 reaches no
// client (503 with a Retry-After instead, the status from the owner's
// published one), and nothing was sent.
func TestAnswersAreSealed(t *testing.T) {
	dsn := pgtest.New(t)
	w := newWorld(4)
	a := startMember(t, w, dsn, "node-a")
	b := &member{id: "node-b", dev: &devices{w: w, node: "node-b"}}
	var gate *halt
	b.node, b.srv, gate = serveNode(t, dsn, b.dev, cluster.Config{NodeID: "node-b"})
	owners := settle(t, w, []*member{a, b}, 10*testTTL)
	var name string
	for s, n := range owners {
		if n == "node-b" {
			name = s
		}
	}
	if name == "" {
		t.Fatalf("node-b owns nothing: %v", owners)
	}
	gate.impostor.Store(true)
	status, body, h := seen(t, a, name)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("through node-a, answered by an impostor at node-b's URL: %d Retry-After %q %s, want 503 with a Retry-After",
			status, h.Get("Retry-After"), body)
	}
	resp, err := http.Get(a.srv.URL + "/api/sessions/" + name)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(b2), "acknowledged") {
		t.Errorf("status through node-a: %d %s, want node-a's own answer", resp.StatusCode, b2)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := w.sent[name]; len(got) != 0 {
		t.Errorf("receipts sent for %s by %v, want none", name, got)
	}
}
