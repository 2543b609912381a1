package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// quick is a Config small enough for a test: every measurement runs, but
// briefly. The figures are checked for sense, never against a time.
func quick(s servers) Config {
	return Config{
		Targets: []Target{
			{Name: "direct", IMAP: s.DirectIMAP, SMTP: s.Sink, User: testUser + "*" + testMaster,
				Secret: s.MasterSecret, PID: s.PID},
			{Name: "passgate", IMAP: s.IMAP, IMAPS: s.IMAPS, SMTP: s.SMTP, User: testUser,
				Secret: s.AppPassword, PID: s.PID},
		},
		Reps: 2, Concurrency: 2, Duration: 300 * time.Millisecond, MaxLogins: 300,
		FetchSize: 256 << 10, Fetches: 3,
		Sessions: 100, OpenConcurrency: 8, Settle: 100 * time.Millisecond,
		SMTPSize: 128 << 10, SMTPMessages: 2, MailFrom: testUser, RcptTo: testUser,
		IOTimeout: 20 * time.Second,
	}
}

// applies reports whether target has the address row r needs.
func applies(r int, t Target) bool {
	switch r {
	case rowLoginTLS, rowFetchTLS, rowIdleTLSPSS, rowIdleTLSRSS, rowCPULoginTLS, rowCPUFetchTLS:
		return t.IMAPS != ""
	case rowSMTP, rowCPUSMTP:
		return t.SMTP != ""
	}
	return t.IMAP != ""
}

func TestRunEveryMeasurement(t *testing.T) {
	s := startServers(t)
	var progress bytes.Buffer
	cfg := quick(s)
	cfg.Log = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) > 0 {
		t.Fatalf("failures: %q\nprogress:\n%s", f, progress.String())
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\nprogress:\n%s", md.String(), progress.String())

	for r, info := range rep.info {
		for _, tg := range cfg.Targets {
			v, ok := rep.best(r, tg.Name)
			if ok != applies(r, tg) {
				t.Errorf("%s, %s: has a figure = %v, want %v", info.label, tg.Name, ok, applies(r, tg))
				continue
			}
			switch {
			case !ok:
			case strings.HasPrefix(info.label, "CPU"):
				// The clock ticks at 10 ms: a short run may cost none.
				if v < 0 {
					t.Errorf("%s, %s = %v, want ≥ 0", info.label, tg.Name, v)
				}
			case strings.HasPrefix(info.label, "idle"):
				// Here the servers of both targets share one process, and
				// the garbage of the FETCH message's APPEND may be
				// returned to the kernel meanwhile: memory is checked
				// alone, in TestIdleGrows.
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("%s, %s = %v", info.label, tg.Name, v)
				}
			case v <= 0:
				t.Errorf("%s, %s = %v, want > 0", info.label, tg.Name, v)
			}
		}
		if !strings.Contains(md.String(), "| "+info.label+" | ") {
			t.Errorf("the table has no row %q", info.label)
		}
	}
	// The repeated rows have one figure per repetition; idle only one.
	if n := len(rep.values(rowLogin, "passgate")); n != cfg.Reps {
		t.Errorf("login figures = %d, want %d", n, cfg.Reps)
	}
	if n := len(rep.values(rowIdlePSS, "passgate")); n != 1 {
		t.Errorf("idle figures = %d, want 1", n)
	}
	head := "| measure | direct | passgate | passgate / direct |"
	if !strings.Contains(md.String(), head) {
		t.Errorf("table head is not %q", head)
	}
	for _, secret := range []string{s.AppPassword, s.MasterSecret} {
		if strings.Contains(md.String()+progress.String(), secret) {
			t.Error("a secret is in the report or the progress lines")
		}
	}
}

// A target that refuses the login is reported as failed, with the server's
// reply and without the secret, and the other targets are still measured.
func TestRunReportsFailures(t *testing.T) {
	s := startServers(t)
	cfg := quick(s)
	const wrong = "wrong-secret-9"
	cfg.Targets[1].Secret = wrong
	cfg.Measurements = []string{Login}
	cfg.Reps = 1
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	out := md.String()
	if len(rep.Failures()) != 1 || !strings.Contains(out, "FAILED: login passgate rep 1") ||
		!strings.Contains(out, "AUTHENTICATIONFAILED") {
		t.Errorf("report does not show the failed login:\n%s", out)
	}
	if !strings.Contains(out, "| error |") {
		t.Errorf("the failed cell does not say error:\n%s", out)
	}
	if _, ok := rep.best(rowLogin, "direct"); !ok {
		t.Error("direct was not measured")
	}
	if strings.Contains(out, wrong) {
		t.Error("the secret is in the report")
	}
}

// Idle sessions held through passgate grow the memory of a fresh server
// process, and the report says by how much per session.
func TestIdleGrows(t *testing.T) {
	s := startServers(t)
	cfg := quick(s)
	cfg.Targets = cfg.Targets[1:]
	cfg.Measurements = []string{Idle}
	cfg.Sessions = 200
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) > 0 {
		t.Fatal(f)
	}
	pss, ok := rep.best(rowIdlePSS, "passgate")
	if !ok || pss <= 0 || math.IsInf(pss, 0) {
		t.Errorf("PSS per idle session = %v, %v; want a positive figure", pss, ok)
	}
	t.Logf("%.1f KiB PSS per idle session (passgate front-end and its upstream in one process)", pss)
}
