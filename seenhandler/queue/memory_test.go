package queue_test

import (
	"testing"

	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/seenhandler/queue/queuetest"
)

func TestMemory(t *testing.T) {
	queuetest.Run(t, func(*testing.T) queue.Queue { return queue.NewMemory() })
}
