package redis_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/internal/testredis"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/redis"
)

// exercise runs a little of everything through s: an account, an app
// password found and touched, a revocation event, a counter.
func exercise(t *testing.T, s *redis.Store) {
	t.Helper()
	events, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	setup(t, s, "a")
	if err := verifyPath(t.Context(), s, "a"); err != nil {
		t.Fatalf("verify path: %v", err)
	}
	if err := s.RevokeAppPassword(t.Context(), "alice", "a"); err != nil {
		t.Fatalf("RevokeAppPassword: %v", err)
	}
	if ev := receive(t, events); ev.AppPasswordID != "a" {
		t.Fatalf("event %+v", ev)
	}
	if v, err := s.Incr(t.Context(), "k", 2, time.Minute); err != nil || v != 2 {
		t.Fatalf("Incr = %d, %v", v, err)
	}
	if _, err := s.LookupKey(t.Context()); err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
}

// TestACL logs in as an ACL user confined to its key prefix and events
// channel: everything passgate does stays inside them.
func TestACL(t *testing.T) {
	const password = "Corr3ct-Horse"
	srv := testredis.Start(t,
		"--user", "default", "off",
		"--user", "pg", "on", ">"+password, "~pg:*", "&pg:events", "+@all", "-@dangerous")
	url := "redis://pg:" + password + "@" + srv.Addr()

	t.Run("URL", func(t *testing.T) {
		exercise(t, open(t, redis.Options{URL: url, KeyPrefix: "pg"}))
	})
	t.Run("Fields", func(t *testing.T) {
		s := open(t, redis.Options{Addrs: []string{srv.Addr()}, Username: "pg", Password: password, KeyPrefix: "pg"})
		if _, err := s.GetAccount(t.Context(), "alice"); err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
	})
	t.Run("PasswordOverridesURL", func(t *testing.T) {
		s := open(t, redis.Options{URL: "redis://pg:wrong@" + srv.Addr(), Password: password, KeyPrefix: "pg"})
		if _, err := s.GetAccount(t.Context(), "alice"); err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		_, err := redis.Open(t.Context(), redis.Options{URL: "redis://pg:Wr0ng-Horse@" + srv.Addr(), KeyPrefix: "pg"})
		wantUnavailable(t, "Open with a wrong password", err)
		if strings.Contains(err.Error(), "Wr0ng") {
			t.Errorf("error shows the password: %v", err)
		}
		t.Log(err)
	})
	t.Run("OutsideItsKeys", func(t *testing.T) {
		s := open(t, redis.Options{URL: url, KeyPrefix: "other"})
		err := s.CreateAccount(t.Context(), store.Account{Username: "alice"})
		wantUnavailable(t, "CreateAccount outside the ACL's keys", err)
		if !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("error %v does not say NOPERM", err)
		}
	})
}

// TestTLS connects with rediss:// to redis-server's TLS port, verifying
// its certificate with the test CA; without the CA the connection fails.
func TestTLS(t *testing.T) {
	testredis.Path(t) // skip early without redis-server
	certFile, keyFile := testcert.Write(t, t.TempDir(), "")
	ca := testcert.Pool(t, certFile) // the certificate is its own CA
	srv := testredis.StartArgs(t, func(port int) []string {
		return []string{"--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", certFile, "--tls-key-file", keyFile,
			"--tls-ca-cert-file", certFile, "--tls-auth-clients", "no"}
	})
	url := "rediss://localhost:" + strconv.Itoa(srv.Port)

	t.Run("VerifiedCA", func(t *testing.T) {
		exercise(t, open(t, redis.Options{URL: url, TLSConfig: &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}}))
	})
	t.Run("AddrsWithTLSConfig", func(t *testing.T) {
		s := open(t, redis.Options{Addrs: []string{"localhost:" + strconv.Itoa(srv.Port)}, TLSConfig: &tls.Config{RootCAs: ca}})
		if _, err := s.GetAccount(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetAccount: %v", err)
		}
	})
	t.Run("UnknownCA", func(t *testing.T) {
		_, err := redis.Open(t.Context(), redis.Options{URL: url})
		wantUnavailable(t, "Open without the CA", err)
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v does not name the certificate", err)
		}
	})
	t.Run("PlainToTLSPort", func(t *testing.T) {
		_, err := redis.Open(t.Context(), redis.Options{URL: "redis://localhost:" + strconv.Itoa(srv.Port)})
		wantUnavailable(t, "Open without TLS", err)
	})
}

func TestOpenErrors(t *testing.T) {
	mr := miniredis.RunT(t)
	tests := []struct {
		name string
		opts redis.Options
		want string
	}{
		{"NoAddress", redis.Options{}, "no address"},
		{"URLAndAddrs", redis.Options{URL: "redis://" + mr.Addr(), Addrs: []string{mr.Addr()}}, "not both"},
		{"SentinelWithURL", redis.Options{URL: "redis://" + mr.Addr(), MasterName: "m"}, "Sentinel"},
		{"BadScheme", redis.Options{URL: "http://u:Secr3tPw@" + mr.Addr()}, "scheme"},
		{"BadPort", redis.Options{URL: "redis://u:Secr3tPw@localhost:port"}, "invalid URL"},
		{"Query", redis.Options{URL: "redis://u:Secr3tPw@" + mr.Addr() + "/?dial_timeout=3s"}, "query"},
		{"BadDB", redis.Options{URL: "redis://u:Secr3tPw@" + mr.Addr() + "/x"}, "database"},
		{"SentinelCluster", redis.Options{Addrs: []string{mr.Addr()}, MasterName: "m", Cluster: true}, "not both"},
		{"ClusterDB", redis.Options{Addrs: []string{mr.Addr()}, Cluster: true, DB: 2}, "database 0"},
		{"BadPrefix", redis.Options{Addrs: []string{mr.Addr()}, KeyPrefix: "pass{gate}"}, "key prefix"},
		{"GlobPrefix", redis.Options{Addrs: []string{mr.Addr()}, KeyPrefix: "pg*"}, "key prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redis.Open(t.Context(), tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Secr3t") {
				t.Errorf("error shows the password: %v", err)
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("configuration error %v wraps ErrUnavailable", err)
			}
		})
	}
}

// A server that is not listening fails Open quickly with ErrUnavailable.
func TestOpenUnreachable(t *testing.T) {
	_, err := redis.Open(t.Context(), redis.Options{Addrs: []string{testtool.ClosedAddr(t)}})
	wantUnavailable(t, "Open of a closed port", err)
}

func TestClose(t *testing.T) {
	s := open(t, redis.Options{Addrs: []string{miniredis.RunT(t).Addr()}})
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after Close")
		}
	default:
		t.Fatal("subscriber channel open after Close returned")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = s.Subscribe(t.Context())
	wantUnavailable(t, "Subscribe after Close", err)
	_, err = s.GetAccount(t.Context(), "alice")
	wantUnavailable(t, "GetAccount after Close", err)
}

func TestContextDone(t *testing.T) {
	s := open(t, redis.Options{Addrs: []string{miniredis.RunT(t).Addr()}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateAccount(ctx, store.Account{Username: "alice"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateAccount(done ctx): %v, want context.Canceled", err)
	}
	if _, err := s.GetAccount(t.Context(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account created despite done ctx: %v", err)
	}
	if _, err := s.Subscribe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe(done ctx): %v, want context.Canceled", err)
	}
	if _, err := s.Incr(ctx, "k", 1, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("Incr(done ctx): %v, want context.Canceled", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	s := open(t, redis.Options{Addrs: []string{miniredis.RunT(t).Addr()}})
	ctx := t.Context()
	if err := s.CreateAccount(ctx, store.Account{}); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("CreateAccount(empty username): %v, want an invalid-argument error", err)
	}
	setup(t, s)
	for _, p := range []store.AppPassword{appPass("alice", ""), {ID: "id", Username: "alice"}} {
		err := s.CreateAppPassword(ctx, p)
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("CreateAppPassword(id %q, tag %q): %v, want an invalid-argument error", p.ID, p.Tag, err)
		}
	}
	err := s.UpdateAccount(ctx, "alice", func(a *store.Account) error { a.Username = "mallory"; return nil })
	if err == nil {
		t.Error("UpdateAccount that renames the account succeeded")
	}
	if _, err := s.GetAccount(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAccount(mallory): %v, want ErrNotFound", err)
	}
}

// go-redis's messages go to the slog logger given, at debug level.
func TestSetLibraryLogger(t *testing.T) {
	log, logs := testlog.New(slog.LevelDebug)
	redis.SetLibraryLogger(log)
	t.Cleanup(func() { redis.SetLibraryLogger(quiet) })
	_, err := redis.Open(t.Context(), redis.Options{Addrs: []string{testtool.ClosedAddr(t)}})
	wantUnavailable(t, "Open of a closed port", err)
	if got := logs.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "failed to dial") ||
		!strings.Contains(got, "component=go-redis") {
		t.Errorf("log %q, want go-redis's dial failure at debug level", got)
	}
}
