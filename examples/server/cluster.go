package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	bwm "github.com/bluetick/bluetick/session/whatsmeow"
	"github.com/bluetick/bluetick/session/whatsmeow/cluster"
)

// openNode makes this process a node of the cluster whose coordinator is
// the Postgres store: -node-id (default: the host name), -advertise
// and the cluster secret.
func openNode(ctx context.Context, c config, m *bwm.Manager, logger *slog.Logger) (*cluster.Node, error) {
	id := c.nodeID
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("-node-id: not set, and the host name is unknown: %w", err)
		}
		id = host
	}
	return cluster.Open(ctx, c.db, m, cluster.Config{
		NodeID:    id,
		Advertise: c.advertise,
		Secret:    []byte(c.clusterSecret),
		Logger:    logger,
	})
}
