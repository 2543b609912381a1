package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateAppPasswordCap(t *testing.T) {
	f := newFixture(t)
	f.user(t, alice, "", false)
	f.user(t, bob, "", false)
	ctx := context.Background()
	for i := range DefaultMaxAppPasswords {
		if _, err := f.svc.CreateAppPassword(ctx, root, alice, fmt.Sprint("app ", i), AppPasswordOptions{}); err != nil {
			t.Fatalf("password %d: %v", i+1, err)
		}
	}
	_, err := f.svc.CreateAppPassword(ctx, root, alice, "one too many", AppPasswordOptions{})
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrTooManyAppPasswords) || fe.Field != "username" ||
		!strings.Contains(err.Error(), "40 app passwords") || !strings.Contains(err.Error(), "authn.max_app_passwords") {
		t.Fatalf("41st password: %v; want a username FieldError naming the cap of 40 and its key", err)
	}
	if n := f.count(t, alice); n != DefaultMaxAppPasswords {
		t.Errorf("alice has %d app passwords, want %d", n, DefaultMaxAppPasswords)
	}
	if !strings.Contains(f.log.String(), "cap reached") {
		t.Errorf("no log line for the refusal:\n%s", f.log)
	}
	// The cap is per account, and a revocation frees a place.
	if _, err := f.svc.CreateAppPassword(ctx, root, bob, "Outlook", AppPasswordOptions{}); err != nil {
		t.Errorf("bob: %v", err)
	}
	if _, err := f.svc.RevokeAppPassword(ctx, root, alice, "app 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateAppPassword(ctx, root, alice, "after revoke", AppPasswordOptions{}); err != nil {
		t.Errorf("after a revocation: %v", err)
	}

	// Negative: no cap.
	f.svc.MaxAppPasswords = -1
	if _, err := f.svc.CreateAppPassword(ctx, root, alice, "uncapped", AppPasswordOptions{}); err != nil {
		t.Errorf("with no cap: %v", err)
	}
}

// Parallel creations through one service (the portal and the control
// socket of one server share it) fill the cap exactly; through two
// services on one store (two processes) they never exceed it.
func TestCreateAppPasswordCapParallel(t *testing.T) {
	const max, tries = 5, 16
	for _, services := range []int{1, 2} {
		t.Run(fmt.Sprint(services, " services"), func(t *testing.T) {
			f := newFixture(t)
			f.user(t, alice, "", false)
			svcs := make([]*Service, services)
			for i := range svcs {
				// The bolt store itself: the fixture's counting wrapper is not
				// safe for concurrent use.
				svcs[i] = &Service{Store: f.st.DB, Verifier: f.v, Logger: slog.New(slog.DiscardHandler),
					Now: func() time.Time { return t0 }, MaxAppPasswords: max}
			}
			var wg sync.WaitGroup
			errs := make([]error, tries)
			for i := range tries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = svcs[i%services].CreateAppPassword(context.Background(), root, alice,
						fmt.Sprint("app ", i), AppPasswordOptions{})
				}()
			}
			wg.Wait()
			ok := 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, ErrTooManyAppPasswords):
					t.Errorf("creation %d: %v", i, err)
				}
			}
			n := f.count(t, alice)
			t.Logf("%d services: %d of %d creations succeeded, %d stored", services, ok, tries, n)
			if n != ok {
				t.Errorf("%d creations succeeded but %d passwords are stored", ok, n)
			}
			if n > max || n == 0 || (services == 1 && n != max) {
				t.Errorf("%d passwords stored; want %d with one service, 1 to %d with two", n, max, max)
			}
		})
	}
}

func (f *fixture) count(t *testing.T, user string) int {
	t.Helper()
	pws, err := f.svc.ListAppPasswords(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return len(pws)
}
