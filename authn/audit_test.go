package authn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/memcount"
)

// memAudit is a store.AuditLog that keeps every record.
type memAudit struct {
	mu   sync.Mutex
	recs []store.AuditRecord
	err  error
}

func (m *memAudit) AppendAudit(_ context.Context, rec store.AuditRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, rec)
	return nil
}

func (m *memAudit) RecentAudit(context.Context, string, int) ([]store.AuditRecord, error) {
	return nil, errors.New("not implemented")
}

// jsonLines decodes every JSON line of buf.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAuditRecordFields(t *testing.T) {
	f := newCacheFixture(t)
	f.clk.sleepMoves = true
	var logs bytes.Buffer
	ma := &memAudit{}
	f.g.Audit = &Auditor{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Store: ma}
	pw := f.pw["alice/laptop"]
	a := attempt(" Alice@Example.com", pw.Password)
	a.TLS, a.SessionID = "TLS 1.3", "sess42"
	if d, err := f.g.Verify(context.Background(), a); err != nil || d.Result != OK {
		t.Fatal(d, err)
	}
	a.Secret = "wrong"
	if d, err := f.g.Verify(context.Background(), a); err != nil || d.Result != BadSecret {
		t.Fatal(d, err)
	}

	want := []store.AuditRecord{{
		Time: t0, Protocol: "imap", Username: alice, Remote: netip.AddrPortFrom(clientIP, 0),
		TLS: "TLS 1.3", Client: "Thunderbird 128", Mechanism: "PLAIN", Result: "ok",
		AppPasswordID: pw.ID, AppPasswordName: "laptop", SessionID: "sess42",
	}, {
		Time: t0, Protocol: "imap", Username: alice, Remote: netip.AddrPortFrom(clientIP, 0),
		TLS: "TLS 1.3", Client: "Thunderbird 128", Mechanism: "PLAIN", Result: "bad-secret",
		SessionID: "sess42", Duration: DefaultTarpitBase, // the tarpit is part of it
	}}
	if fmt.Sprint(ma.recs) != fmt.Sprint(want) {
		t.Errorf("stored records\n%+v\nwant\n%+v", ma.recs, want)
	}
	lines := jsonLines(t, &logs)
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2:\n%s", len(lines), logs.String())
	}
	wantJSON := map[string]any{
		"time": t0.Format(time.RFC3339), "level": "INFO", "msg": "audit", "protocol": "imap",
		"user": alice, "remote": "198.51.100.7", "tls": "TLS 1.3", "client": "Thunderbird 128",
		"mechanism": "PLAIN", "result": "ok", "app_password_id": pw.ID, "app_password_name": "laptop",
		"session": "sess42", "duration": float64(0),
	}
	if fmt.Sprint(lines[0]) != fmt.Sprint(wantJSON) {
		t.Errorf("audit line\n%v\nwant\n%v", lines[0], wantJSON)
	}
	if got := lines[1]["duration"]; got != float64(DefaultTarpitBase) {
		t.Errorf("failure duration %v, want the tarpit %v in ns", got, DefaultTarpitBase)
	}
}

func TestAuditRateLimitedAndStoreFailure(t *testing.T) {
	f := newGuardFixture(t, Limits{MaxPerAddress: 1})
	var logs, warnings bytes.Buffer
	ma := &memAudit{err: errors.New("bolt: disk full")}
	f.g.Audit = &Auditor{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Store: ma,
		Logger: slog.New(slog.NewTextHandler(&warnings, nil))}
	f.try(t, alice, "x", "203.0.113.7")
	if r := f.try(t, alice, ownerSecret, "203.0.113.7"); r != RateLimited {
		t.Fatal(r)
	}
	lines := jsonLines(t, &logs)
	if len(lines) != 2 || lines[1]["result"] != "rate-limited" {
		t.Errorf("audit lines: %v", lines)
	}
	if !strings.Contains(warnings.String(), "audit store append failed") || !strings.Contains(warnings.String(), "disk full") {
		t.Errorf("store failure not logged: %q", warnings.String())
	}
	// A nil Auditor records nothing and does not panic.
	var none *Auditor
	none.Record(context.Background(), store.AuditRecord{})
}

// TestAuditNeverLogsSecrets runs many attempts with distinct secrets of
// every outcome and looks for each secret in everything logged.
func TestAuditNeverLogsSecrets(t *testing.T) {
	f := newCacheFixture(t)
	var out bytes.Buffer // audit, Guard and Verifier logs together
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.v.Logger = logger
	f.g.Logger = logger
	f.g.Limits = Limits{MaxPerAddress: 40}
	f.g.Audit = &Auditor{Log: logger, Store: &memAudit{}, Logger: logger}
	f.st.set(func(m *memStore) { m.failTouch = errors.New("touch failed") }) // a warning path too

	var secrets []string
	var attempts int
	run := func(user, secret, ip string) {
		a := attempt(user, secret)
		a.RemoteIP = netip.MustParseAddr(ip)
		secrets = append(secrets, secret)
		attempts++
		if _, err := f.g.Verify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		ip := fmt.Sprintf("203.0.113.%d", i%3+1) // reaches the address limit: rate-limited too
		run(alice, fmt.Sprintf("wrong-%d-%x", i, i*7919), ip)
		run(fmt.Sprintf("nobody%d@example.com", i), fmt.Sprintf("unknown-%d-secret", i), ip)
		run(bob, fmt.Sprintf("Bob Primary %d!", i), ip)
	}
	for _, key := range []string{"alice/laptop", "alice/phone", "alice/expiring", "bob/mail", "carol/mail"} {
		for range 2 {
			run(strings.Split(key, "/")[0]+"@example.com", f.pw[key].Password, "198.51.100.9")
		}
	}
	run(bob, "Bob Primary 22", "198.51.100.9")
	run(alice, "Alice Primary 1", "198.51.100.9")

	text := out.String()
	for _, s := range secrets {
		for _, form := range []string{s, NormalizeSecret(s)} {
			if len(form) >= 6 && strings.Contains(text, form) {
				t.Errorf("a secret (%d bytes) appears in the logs", len(form))
			}
		}
	}
	if n := strings.Count(text, `"msg":"audit"`); n != attempts {
		t.Errorf("%d audit records for %d attempts", n, attempts)
	}
	for _, r := range []Result{OK, BadSecret, UnknownUser, RateLimited, PrimaryRefusedMFA, Disabled, Expired, ScopeDenied} {
		if !strings.Contains(text, `"result":"`+string(r)+`"`) {
			t.Errorf("no audit record with result %s: the run does not cover it", r)
		}
	}
}

func TestGuardAuditUpstreamError(t *testing.T) {
	var logs bytes.Buffer
	g := &Guard{Verifier: &fakeVerifier{}, Counters: &memcount.Counters{},
		Audit: &Auditor{Log: slog.New(slog.NewJSONHandler(&logs, nil))}}
	g.AuditUpstreamError(context.Background(), attempt(alice, "s3cret-value"), Decision{Result: OK, Username: alice, AppPasswordID: "ap-9"})
	lines := jsonLines(t, &logs)
	if len(lines) != 1 || lines[0]["result"] != AuditUpstreamError || lines[0]["app_password_id"] != "ap-9" {
		t.Errorf("audit: %v", lines)
	}
	if strings.Contains(logs.String(), "s3cret-value") {
		t.Error("secret logged")
	}
}

// notified is an AuditNotifier that keeps what it is handed.
type notified struct {
	mu   sync.Mutex
	recs []store.AuditRecord
}

func (n *notified) Notify(rec store.AuditRecord) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recs = append(n.recs, rec)
}

// The notifier hook is handed every record, also when the store failed
// to keep it (the owner is still told).
func TestAuditorNotifies(t *testing.T) {
	n := &notified{}
	au := &Auditor{Store: &memAudit{err: errors.New("store down")}, Notify: n,
		Logger: slog.New(slog.DiscardHandler)}
	au.Record(context.Background(), store.AuditRecord{Username: "alice", Result: "ok"})
	au.Record(context.Background(), store.AuditRecord{Username: "bob", Result: "bad-secret"})
	if len(n.recs) != 2 || n.recs[0].Username != "alice" || n.recs[1].Result != "bad-secret" {
		t.Errorf("notified %+v, want alice's ok and bob's bad-secret", n.recs)
	}
}
