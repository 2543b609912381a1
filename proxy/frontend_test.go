package proxy

import (
	"context"
	"errors"
	"strings"
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

// TestPanicText: a panic is logged by its type unless it is a runtime
// error, so that a value holding a secret never reaches the log.
func TestPanicText(t *testing.T) {
	if got := PanicText("secret s3cr3t"); strings.Contains(got, "s3cr3t") || got != "string" {
		t.Errorf("PanicText(string) = %q, want the type only", got)
	}
	var m map[string]int
	func() {
		defer func() {
			if got := PanicText(recover()); !strings.Contains(got, "assignment to entry in nil map") {
				t.Errorf("PanicText(runtime error) = %q, want its text", got)
			}
		}()
		m["x"] = 1
	}()
}

func TestLoggedUsername(t *testing.T) {
	long := strings.Repeat("a", 10000)
	if got := LoggedUsername(long); len(got) != maxLoggedUsername {
		t.Errorf("a %d-byte username is logged with %d bytes", len(long), len(got))
	}
	if got := LoggedUsername("alice@example.org"); got != "alice@example.org" {
		t.Errorf("LoggedUsername cut a short name: %q", got)
	}
}
