package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestReadyProbeCached: requests within TTL share one probe; after TTL a
// new probe runs and sees the change.
func TestReadyProbeCached(t *testing.T) {
	now := time.Unix(1000, 0)
	var down error
	calls := 0
	r := &Ready{TTL: 5 * time.Second, Now: func() time.Time { return now },
		Checks: []Check{{Name: "store", Run: func(context.Context) error { calls++; return down }}}}
	h := New("test").Handler(r)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	for range 10 {
		if code, _ := get(); code != http.StatusOK {
			t.Fatalf("/readyz %d, want 200", code)
		}
	}
	if calls != 1 {
		t.Errorf("%d probes for 10 requests within the TTL, want 1", calls)
	}
	down = errors.New("connection refused")
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("within the TTL the cached answer holds: %d", code)
	}
	now = now.Add(5 * time.Second)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "store: connection refused") {
		t.Errorf("after the TTL: %d %q, want 503 naming the store", code, body)
	}
	if calls != 2 {
		t.Errorf("%d probes, want 2", calls)
	}
}

func TestBoundedLabels(t *testing.T) {
	for in, want := range map[string]string{"PLAIN": "plain", "": "none", "x\ny": "other",
		strings.Repeat("a", 40): "other", "bad-secret": "bad-secret"} {
		if got := bounded(in); got != want {
			t.Errorf("bounded(%q) = %q, want %q", in, got, want)
		}
	}
}
