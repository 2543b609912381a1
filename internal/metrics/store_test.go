package metrics

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/passgate/passgate/directory"
	"github.com/passgate/passgate/directory/dovecotauth"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// TestStoreCallsCounted: calls through Metrics.Store to a real bbolt store
// are timed by operation; a not-found or already-exists answer is no
// error, a call to the closed store is one.
func TestStoreCallsCounted(t *testing.T) {
	m := New("test")
	db, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := m.Store(db)
	ctx := t.Context()
	if _, err := s.GetAccount(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAccount(unknown): %v", err)
	}
	a := store.Account{Username: "alice", Created: time.Now()}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, a); err == nil {
		t.Fatal("second CreateAccount succeeded")
	}
	if got := sampleValue(t, m, "passgate_store_errors_total", ""); got != 0 {
		t.Errorf("errors after answers only: %v, want 0", got)
	}
	db.Close()
	if _, err := s.GetAccount(ctx, "alice"); err == nil {
		t.Fatal("GetAccount on the closed store succeeded")
	}
	counts := map[string]uint64{"get_account": 2, "create_account": 2}
	for op, want := range counts {
		if got := histogramCount(t, m, "passgate_store_call_duration_seconds", op); got != want {
			t.Errorf("store calls %s: %d, want %d", op, got, want)
		}
	}
	if got := sampleValue(t, m, "passgate_store_errors_total", "get_account"); got != 1 {
		t.Errorf("store errors get_account: %v, want 1 (the closed store)", got)
	}
	if got := sampleValue(t, m, "passgate_store_errors_total", "create_account"); got != 0 {
		t.Errorf("store errors create_account: %v, want 0 (ErrExists is an answer)", got)
	}
}

// TestDirectoryCallsCounted: a Dovecot directory whose auth socket does
// not exist fails a lookup (counted as an error); a name that cannot be a
// login is refused without a request (an answer, no error); both are
// timed.
func TestDirectoryCallsCounted(t *testing.T) {
	m := New("test")
	d, err := dovecotauth.New(dovecotauth.Config{AuthSocket: filepath.Join(t.TempDir(), "no-such-socket"),
		UserdbSocket: filepath.Join(t.TempDir(), "no-such-userdb"), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := m.Directory(d)
	if _, err := dir.Lookup(t.Context(), "alice"); err == nil {
		t.Fatal("lookup through a missing socket succeeded")
	}
	if _, err := dir.Authenticate(t.Context(), "a*b", "secret"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("authenticate an impossible name: %v, want ErrNotFound", err)
	}
	for op, want := range map[string]float64{"lookup": 1, "authenticate": 0} {
		if got := sampleValue(t, m, "passgate_directory_errors_total", op); got != want {
			t.Errorf("directory errors %s: %v, want %v", op, got, want)
		}
		if got := histogramCount(t, m, "passgate_directory_call_duration_seconds", op); got != 1 {
			t.Errorf("directory calls %s: %d, want 1", op, got)
		}
	}
}

// histogramCount is the _count of the histogram name with operation op.
func histogramCount(t *testing.T, m *Metrics, name, op string) uint64 {
	t.Helper()
	var n uint64
	eachSample(t, m, name, op, func(s *dto.Metric) { n += s.GetHistogram().GetSampleCount() })
	return n
}

// sampleValue is the counter name with operation op, or the sum over every
// operation when op is "".
func sampleValue(t *testing.T, m *Metrics, name, op string) float64 {
	t.Helper()
	var v float64
	eachSample(t, m, name, op, func(s *dto.Metric) { v += s.GetCounter().GetValue() })
	return v
}

func eachSample(t *testing.T, m *Metrics, name, op string, f func(*dto.Metric)) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "operation" && (op == "" || l.GetValue() == op) {
					f(s)
				}
			}
		}
	}
}
