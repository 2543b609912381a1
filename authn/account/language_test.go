package account

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/passgate/passgate/store"
)

// handed is an authn.AuditNotifier that keeps what the service hands it.
type handed struct {
	mu   sync.Mutex
	recs []store.AuditRecord
}

func (h *handed) Notify(rec store.AuditRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, rec)
}

// SetLanguage keeps a tag, refuses what is not one naming the field, and
// every change reaches the notifier hook with its actor's protocol.
func TestSetLanguage(t *testing.T) {
	f := newFixture(t)
	h := &handed{}
	f.svc.Notify = h
	f.user(t, alice, "alice primary pw", false)
	ctx := context.Background()
	if err := f.svc.SetLanguage(ctx, root, alice, "fr"); err != nil {
		t.Fatal(err)
	}
	if got := f.account(t, alice).Language; got != "fr" {
		t.Errorf("language %q, want fr", got)
	}
	var fe *FieldError
	for _, bad := range []string{"fr\r\nx", "<script>", "a-very-long-language-tag"} {
		if err := f.svc.SetLanguage(ctx, root, alice, bad); !errors.As(err, &fe) || fe.Field != "language" {
			t.Errorf("SetLanguage(%q) = %v, want a language field error", bad, err)
		}
	}
	f.enrol(t, alice)
	if err := f.svc.ResetMFA(ctx, root, alice); err != nil {
		t.Fatal(err)
	}
	if len(h.recs) != 3 || h.recs[0].Result != ResultUserCreated || h.recs[1].Result != ResultLanguageSet ||
		h.recs[2].Result != ResultMFAReset || h.recs[2].Protocol != ProtocolAdmin {
		t.Errorf("notifier was handed %+v", h.recs)
	}
}
