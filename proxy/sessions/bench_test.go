package sessions

import (
	"context"
	"fmt"
	"testing"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// BenchmarkReconcile10k measures one Reconcile of 10,000 live sessions
// (2,000 app passwords of 100 accounts, 5 sessions each) on bolt: the cost
// of the recheck every RecheckInterval.
//
//	go test -run '^$' -bench Reconcile10k ./proxy/sessions
func BenchmarkReconcile10k(b *testing.B) {
	const users, perUser, perPassword = 100, 20, 5
	w := newWorld(b)
	ctx := context.Background()
	r := &Registry{Store: w.db}
	for u := range users {
		user := fmt.Sprintf("user%03d", u)
		if err := w.db.CreateAccount(ctx, store.Account{Username: user}); err != nil {
			b.Fatal(err)
		}
		for i := range perUser {
			p := store.AppPassword{ID: fmt.Sprintf("p%02d", i), Username: user, Tag: []byte{byte(i)}, Scopes: store.AllScopes}
			if err := w.db.CreateAppPassword(ctx, p); err != nil {
				b.Fatal(err)
			}
			for range perPassword {
				open(b, r, authn.Decision{Result: authn.OK, Username: user, AppPasswordID: p.ID})
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if n, err := r.Reconcile(ctx); err != nil || n != 0 {
			b.Fatalf("Reconcile = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(len(r.Sessions())), "sessions")
}
