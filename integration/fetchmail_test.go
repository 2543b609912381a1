package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/proxy"
)

// TestFetchmail: fetchmail fetches a message through passgate's POP3
// front-end with an app password, over STLS on the plain port and over
// implicit TLS (995), checking the certificate against the test CA, and
// hands it to an MDA that appends it to a file.
func TestFetchmail(t *testing.T) {
	d := sharedDovecot(t)
	g := startPOP3Gate(t, d, proxy.Limits{})
	fetchmail := requireTool(t, "fetchmail")
	d.deliver(t, g.user, testMessage(g.user, "for fetchmail", "fetched by fetchmail"))
	_, port, _ := net.SplitHostPort(g.addr)
	_, tlsPort, _ := net.SplitHostPort(g.tlsAddr)

	for _, tc := range []struct {
		name, port string
		tls        string // fetchmail's TLS options for the server
		want       string // in fetchmail's --verbose output
	}{
		// sslproto without ssl makes STLS mandatory (fetchmail(1)).
		{"STLS", port, "sslproto 'TLS1.2+'", "upgrade to TLS succeeded"},
		{"implicit TLS", tlsPort, "ssl", "SSL/TLS: using protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mbox := filepath.Join(dir, "mbox")
			rc := filepath.Join(dir, "fetchmailrc")
			// keep and fetchall: the message stays on the server, so each
			// subtest fetches the same one.
			conf := fmt.Sprintf("set no syslog\n"+
				"poll localhost protocol pop3 port %s timeout 30:\n"+
				"  user %q password %q is localuser here\n"+
				"  %s sslcertck sslcertfile %q\n"+
				"  keep fetchall no rewrite mda \"cat >> %s\"\n",
				tc.port, g.user, g.appPW, tc.tls, g.certFile, mbox)
			if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, fetchmail, "--nodetach", "--verbose", "--fetchmailrc", rc, "--idfile", filepath.Join(dir, "ids"))
			cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("fetchmail: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("fetchmail's output lacks %q:\n%s", tc.want, out)
			}
			got, err := os.ReadFile(mbox)
			if err != nil {
				t.Fatalf("the MDA wrote nothing: %v\nfetchmail said:\n%s", err, out)
			}
			if !strings.Contains(string(got), "fetched by fetchmail") || !strings.Contains(string(got), "Subject: for fetchmail") {
				t.Fatalf("the delivered file lacks the message:\n%s\nfetchmail said:\n%s", got, out)
			}
		})
	}
}
