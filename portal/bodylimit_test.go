package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A form post larger than maxForm is refused before any handler reads it.
func TestOversizedPostRefused(t *testing.T) {
	h := limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	for _, tc := range []struct {
		size int
		want int
	}{{100, http.StatusOK}, {maxForm + 1, http.StatusRequestEntityTooLarge}} {
		body := "name=" + strings.Repeat("x", tc.size)
		r := httptest.NewRequest(http.MethodPost, "/app-passwords", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("a %d-byte post: status %d, want %d", len(body), w.Code, tc.want)
		}
	}
}
