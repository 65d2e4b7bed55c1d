package main

import (
	"testing"

	"github.com/bluetick/bluetick/examples/internal/routertest"
)

func TestPathSession(t *testing.T) {
	routertest.PathSession(t, newRouter)
}
