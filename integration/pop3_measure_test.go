package integration

import (
	"bufio"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/proxy"
)

// TestPOP3Measure logs the cost of passgate in front of Dovecot's pop3 from
// one run: logins per second (connect, greeting, AUTH PLAIN, QUIT; one
// client at a time) and a 10 MiB RETR, through passgate and straight to
// Dovecot (as the master user). It measures, asserts nothing on timing.
//
//	go test -count=1 -run TestPOP3Measure -v ./integration/
func TestPOP3Measure(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{}, func(g *lineGate) {
		// One user logs in again and again from one address: lift the
		// hash budgets, which would otherwise refuse the runs.
		g.guard.Limits = authn.Limits{MaxHashesPerAddress: 1 << 20, MaxHashesPerNetwork: 1 << 20, MaxHashesPerAccount: 1 << 20}
		g.guard.Cache = &authn.Cache{}
	})
	body := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 10<<20/80)
	d.deliver(t, g.user, testMessage(g.user, "ten mebibytes", body))

	viaGate := "AUTH PLAIN " + plainIR("", g.user, g.appPW)
	direct := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte(g.user+"\x00"+masterUser+"\x00"+masterSecret))
	const logins = 200
	for _, m := range []struct{ name, addr, auth string }{{"passgate", g.addr, viaGate}, {"dovecot", d.POP3Addr, direct}} {
		start := time.Now()
		for range logins {
			p := dialPOP3(t, m.addr)
			if r := p.cmd(m.auth); !strings.HasPrefix(r, "+OK") {
				t.Fatalf("%s: AUTH: %q", m.name, r)
			}
			p.cmd("QUIT")
			p.c.Close()
		}
		perSec := float64(logins) / time.Since(start).Seconds()

		p := dialPOP3(t, m.addr)
		p.cmd(m.auth)
		start = time.Now()
		if r := p.cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("%s: RETR: %q", m.name, r)
		}
		p.c.SetReadDeadline(time.Now().Add(ioTimeout))
		size := 0
		for {
			line, err := p.r.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				t.Fatalf("%s: RETR: %v after %d bytes", m.name, err, size)
			}
			size += len(line)
			if string(line) == ".\r\n" {
				break
			}
		}
		el := time.Since(start)
		t.Logf("%-8s logins/s %.0f (%d sequential AUTH PLAIN + QUIT); RETR %d bytes in %v (%.0f MiB/s)",
			m.name, perSec, logins, size, el.Round(time.Millisecond), float64(size)/(1<<20)/el.Seconds())
	}
}
