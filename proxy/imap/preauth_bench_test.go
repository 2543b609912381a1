package imap

import (
	"bufio"
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy"
)

// preauthSession is what a typical client sends before and while it logs
// in: CAPABILITY, ID, NOOP, a failed LOGIN with a literal user name, then
// AUTHENTICATE PLAIN with an initial response.
var preauthSession = "a CAPABILITY\r\n" +
	`b ID ("name" "Thunderbird" "version" "128.5.0" "os" "Linux")` + "\r\n" +
	"c NOOP\r\n" +
	"d LOGIN {17+}\r\n" + appUser + ` "wrong secret"` + "\r\n" +
	"e AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+appUser+"\x00"+appSecret)) + "\r\n"

// BenchmarkPreauth is the pre-auth state machine's cost per client session:
// greeting, the five commands of preauthSession parsed and answered, and
// the hand-off to the relay (over net.Pipe, with an Authenticator and an
// Upstream that cost nothing).
//
//	go test -run '^$' -bench Preauth ./proxy/imap
func BenchmarkPreauth(b *testing.B) {
	up := &pipeUpstream{}
	srv := &Server{Auth: &fakeAuth{}, Upstream: up, AllowCleartext: true,
		Limits: proxy.Limits{PreauthTimeout: ioTimeout}, Logger: slog.New(slog.DiscardHandler)}
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-served
		up.wg.Wait()
	})
	r := bufio.NewReaderSize(nil, 4096)
	for b.Loop() {
		c := ln.dial()
		c.SetDeadline(time.Now().Add(ioTimeout))
		r.Reset(c)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
			b.Fatalf("greeting %q, %v", line, err)
		}
		if _, err := c.Write([]byte(preauthSession)); err != nil {
			b.Fatal(err)
		}
		for tagged := ""; !strings.HasPrefix(tagged, "e "); {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatalf("after %q: %v", tagged, err)
			}
			if line[0] != '*' {
				tagged = line
			}
			if strings.HasPrefix(line, "d ") != strings.HasPrefix(line, "d NO") ||
				strings.HasPrefix(line, "e ") != strings.HasPrefix(line, "e OK") {
				b.Fatalf("unexpected reply %q", line)
			}
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}
