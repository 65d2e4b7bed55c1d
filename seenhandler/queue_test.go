package seenhandler_test

import (
	"testing"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queuetest"
)

func TestMemoryQueue(t *testing.T) {
	queuetest.Run(t, func(*testing.T) seenhandler.Queue { return seenhandler.NewMemoryQueue() })
}
