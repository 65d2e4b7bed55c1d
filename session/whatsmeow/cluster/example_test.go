package cluster_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
)

// Every replica of an app runs the same code: a Manager over the shared
// Postgres store, a Node over the Manager, and the handler over the Node
// (as its registry and its forwarder). The nodes agree on who connects
// which session; any of them answers any request.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("DATABASE_URL") // postgres://…, the same for every replica
	m, err := whatsmeow.Open(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	host, _ := os.Hostname()
	node, err := cluster.Open(ctx, dsn, m, cluster.Config{
		NodeID:    host,
		Advertise: "http://" + host + ":8080", // where the other replicas reach this one
		Secret:    []byte(os.Getenv("BLUETICK_CLUSTER_SECRET")),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close() // first: hands this replica's sessions over at once
	h, err := seenhandler.New(node, seenhandler.WithForwarder(node),
		seenhandler.WithAuth(seenhandler.AuthenticatorFunc(func(ctx context.Context, c seenhandler.Credentials) (context.Context, error) {
			if c.Token != os.Getenv("BLUETICK_TOKEN") {
				return ctx, seenhandler.ErrUnauthorized
			}
			return ctx, nil
		})))
	if err != nil {
		log.Fatal(err)
	}
	if err := node.Start(ctx); err != nil { // instead of m.Start
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	// Wrap checks the requests the other replicas forward here and seals
	// the answers, which they check in turn.
	if err := http.ListenAndServe(":8080", node.Wrap(mux, seenhandler.WriteError)); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}
