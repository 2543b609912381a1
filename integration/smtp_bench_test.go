package integration

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/passgate/passgate/internal/testcert"
)

// BenchmarkSMTPRelay10MiB sends one 10 MiB message per iteration along each
// of two paths, alternating which goes first, and reports both throughputs
// and their ratio from the same run:
//
//   - passgate: client -STARTTLS-> passgate -cleartext-> Dovecot submission
//     (master-user login) -> sink
//   - direct:   client -STARTTLS-> Dovecot submission (master-user login)
//     -> sink
//
// Each path keeps one authenticated session for all its messages (RSET
// between them, as go-smtp's client does), so the figures are the relay's
// throughput, not login cost. Each message is checked in the sink (outside
// the timing).
//
//	go test -run '^$' -bench SMTPRelay10MiB -benchtime 10x ./integration
func BenchmarkSMTPRelay10MiB(b *testing.B) {
	d, sink := sharedSink(b)
	g := startSMTPGate(b, d, smtpOpts{})
	a := newAccount(b, d, g.Passgate, true)
	const size = 10 << 20
	msg := bigMessage(a.User, "bench@example.net", "10 MiB benchmark", size)

	viaPassgate := benchClient(b, g.SubmitAddr, g.tlsConfig(b), sasl.NewPlainClient("", a.User, a.AppPass))
	direct := benchClient(b, d.SubmitAddr, &tls.Config{RootCAs: testcert.Pool(b, d.CertFile), ServerName: "localhost"},
		sasl.NewPlainClient(a.User, masterUser, masterSecret))
	paths := []struct {
		name    string
		c       *smtp.Client
		elapsed time.Duration
	}{{"passgate", viaPassgate, 0}, {"direct", direct, 0}}

	cpu0, _ := cpuTime(g.cmd.Process.Pid)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range paths {
			p := &paths[(i+j)%2]
			rcpt := uniqueRcpt("bench-" + p.name)
			start := time.Now()
			if err := p.c.SendMail(a.User, []string{rcpt}, bytes.NewReader(msg)); err != nil {
				b.Fatalf("send 10 MiB %s: %v", p.name, err)
			}
			p.elapsed += time.Since(start)
			b.StopTimer()
			if got := sink.take(b, rcpt); !bytes.HasSuffix(got.Data, msg) {
				b.Fatalf("%s: the sink got %d bytes, not the message", p.name, len(got.Data))
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(b.N) * size / 1e6 / d.Seconds() }
	pg, dir := mbps(paths[0].elapsed), mbps(paths[1].elapsed)
	b.ReportMetric(pg, "passgate-MB/s")
	b.ReportMetric(dir, "direct-MB/s")
	b.ReportMetric(pg/dir, "passgate/direct")
	b.ReportMetric(0, "ns/op")
	if cpu1, err := cpuTime(g.cmd.Process.Pid); err == nil {
		// passgate's CPU (user + system) per relayed message.
		b.ReportMetric(float64((cpu1-cpu0).Milliseconds())/float64(b.N), "passgate-CPU-ms/msg")
	}
	if peak, err := peakRSS(g.cmd.Process.Pid); err == nil {
		b.ReportMetric(float64(peak)/(1<<20), "passgate-peak-RSS-MiB")
	}
	b.Logf("%d × 10 MiB: passgate %.1f MB/s, direct %.1f MB/s, ratio %.2f", b.N, pg, dir, pg/dir)
	assertNoSecrets(b, g.Output(), a.AppPass, a.Primary, masterSecret)
}

// benchClient opens an authenticated submission session with STARTTLS.
func benchClient(b *testing.B, address string, cfg *tls.Config, auth sasl.Client) *smtp.Client {
	b.Helper()
	c, err := smtp.DialStartTLS(address, cfg)
	if err != nil {
		b.Fatalf("dial %s: %v", address, err)
	}
	b.Cleanup(func() { c.Close() })
	c.CommandTimeout = 2 * time.Minute
	c.SubmissionTimeout = 2 * time.Minute
	if err := c.Auth(auth); err != nil {
		b.Fatalf("AUTH at %s: %v", address, err)
	}
	return c
}

// TestSMTPMemory50MiB sends a 50 MiB message (passgate's default limit)
// with curl and checks that passgate's resident memory high-water mark grew
// by less than the message: the body is streamed, never held whole.
func TestSMTPMemory50MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 50 MiB")
	}
	d, sink := sharedSink(t)
	g := startSMTPGate(t, d, smtpOpts{})
	a := newAccount(t, d, g.Passgate, false)
	const size = 50 << 20
	rcpt := uniqueRcpt("memory")

	// A small message first, so the baseline includes a session's
	// buffers and TLS state.
	small := smtpMessage(a.User, rcpt, "warm up")
	o := sendOpts{Via: viaTLS, Mech: "PLAIN", User: a.User, Secret: a.AppPass, From: a.User, To: []string{rcpt}, File: writeMessage(t, small)}
	if out, err := runCurlSMTP(t, g, o); err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	sink.take(t, rcpt)
	before, err := peakRSS(g.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("passgate's memory: %v", err)
	}

	msg := bigMessage(a.User, rcpt, "50 MiB", size)
	o.File = writeMessage(t, msg)
	if out, err := runCurlSMTP(t, g, o); err != nil {
		t.Fatalf("curl: %v\n%s", err, tail(out, 2000))
	}
	after, err := peakRSS(g.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("passgate's memory: %v", err)
	}
	checkRelayed(t, sink.take(t, rcpt), msg, a.User, rcpt)
	growth := after - before
	t.Logf("passgate's peak RSS: %.1f MiB before the 50 MiB message, %.1f MiB after (grew %.1f MiB)",
		float64(before)/(1<<20), float64(after)/(1<<20), float64(growth)/(1<<20))
	if growth >= size {
		t.Fatalf("passgate's peak RSS grew by %d bytes during a %d-byte message: it holds the message", growth, size)
	}
	assertNoSecrets(t, g.Output(), a.AppPass, a.Primary, masterSecret)
}

// peakRSS returns a process's resident memory high-water mark (VmHWM) in
// bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}

// cpuTime returns the user plus system CPU time a process has used, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name (field 2) may hold spaces: count from its ")".
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpu time: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
