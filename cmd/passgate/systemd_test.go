package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/directory/dovecotauth"
	"github.com/passgate/passgate/internal/metrics"
	"github.com/passgate/passgate/internal/testtool"
	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
)

// TestSystemdUnitVerifies: packaging/passgate.service passes
// `systemd-analyze verify` (syntax, known options, a usable ExecStart) and
// keeps the promises the README makes for it.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testtool.Require(t, "systemd-analyze", "systemd")
	raw, err := os.ReadFile(filepath.Join("..", "..", "packaging", "passgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"Type=notify", "StateDirectory=passgate", "ProtectSystem=strict",
		"NoNewPrivileges=true", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "PrivateTmp=true",
		"ProtectHome=true", "RestrictAddressFamilies=", "ExecStart=/usr/local/bin/passgate serve "} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// verify checks that ExecStart's program exists: point it at a passgate
	// built here, the unit file otherwise unchanged.
	bin := filepath.Join(t.TempDir(), "passgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(t.TempDir(), "passgate.service")
	unit = strings.ReplaceAll(unit, "/usr/local/bin/passgate", bin)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestGrafanaDashboardNamesRealMetrics: every passgate_ metric the
// dashboard queries is one that passgate exports (a renamed metric would
// leave an empty panel).
func TestGrafanaDashboardNamesRealMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "packaging", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	m := metrics.New("test")
	m.OpenSessions(func() map[store.Scope]int { return nil })
	m.Relayed(store.ScopeIMAP, true, 1)
	m.UpstreamLogin("IMAP", time.Millisecond, errors.New("x"))
	m.Blocked("address")
	m.SessionEnded(store.ScopeIMAP, "event")
	m.Audited(store.AuditRecord{Protocol: "imap", Mechanism: "PLAIN", Result: "ok"})
	// A call and a failure of the store (closed) and the directory (no
	// socket), so that their series exist.
	db, err := bolt.Open(filepath.Join(t.TempDir(), "d.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	m.Store(db).GetAccount(context.Background(), "nobody")
	dir, err := dovecotauth.New(dovecotauth.Config{AuthSocket: filepath.Join(t.TempDir(), "none"), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.Directory(dir).Authenticate(context.Background(), "alice", "x")
	ready := &metrics.Ready{Checks: []metrics.Check{{Name: "store", Run: func(context.Context) error { return nil }}}}
	ready.Probe(context.Background(), m)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range families {
		known[f.GetName()] = true
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			known[f.GetName()+suffix] = true
		}
	}
	name := regexp.MustCompile(`passgate_[a-z0-9_]+`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, used := range name.FindAllString(tg.Expr, -1) {
				n++
				if !known[used] {
					t.Errorf("dashboard queries %s, which passgate does not export", used)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d metric references found in the dashboard", n)
	}
}
