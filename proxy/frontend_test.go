package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestWait: a Shutdown waits for its connections, or gives up with its
// context.
func TestWait(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, &wg); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a connection open and ctx done: %v, want context.Canceled", err)
	}
	wg.Done()
	if err := Wait(context.Background(), &wg); err != nil {
		t.Errorf("Wait with every connection ended: %v", err)
	}
}
