package integration

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/passgate/passgate/internal/testcert"
)

// listedPassword is what `apppass list --json` shows of first-use binding.
type listedPassword struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Bound *struct {
		Device struct {
			Client  string `json:"client"`
			TLS     string `json:"tls"`
			Network string `json:"network"`
		} `json:"device"`
	} `json:"bound"`
	Drift []struct {
		Device struct {
			Client string `json:"client"`
			TLS    string `json:"tls"`
		} `json:"device"`
		Refused bool `json:"refused"`
	} `json:"drift"`
}

// listed returns user's app passwords by name, as the CLI lists them.
func (pg *Passgate) listed(t testing.TB, user string) map[string]listedPassword {
	t.Helper()
	out := pg.run(t, "apppass", "list", user, "--json")
	var list []listedPassword
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("apppass list --json: %v in %q", err, out)
	}
	m := make(map[string]listedPassword)
	for _, p := range list {
		m[p.Name] = p
	}
	return m
}

// deviceClient logs in once with an external client (or Go's crypto/tls)
// and returns how the login failed, nil if it succeeded.
type deviceClient struct {
	name string
	try  func(t *testing.T, secret string) error
}

// login is try that fails the test if the login fails.
func (c deviceClient) login(t *testing.T, secret string) {
	t.Helper()
	if err := c.try(t, secret); err != nil {
		t.Fatalf("%s login: %v", c.name, err)
	}
}

// deviceGate is a passgate in front of the shared Dovecot with a new
// user, and the clients of different TLS stacks that log in as them.
func deviceGate(t *testing.T) (*smtpGate, string, []deviceClient) {
	d := sharedDovecot(t)
	g := startSMTPGate(t, d, smtpOpts{})
	user, primary := d.newUser(t)
	g.addUser(t, user, primary, false)
	return g, user, deviceClients(t, g, user)
}

func deviceClients(t *testing.T, g *smtpGate, user string) []deviceClient {
	curl := requireTool(t, "curl")
	requireTool(t, "/usr/bin/python3")
	requireTool(t, "swaks")
	goCfg := &tls.Config{RootCAs: testcert.Pool(t, g.CertFile), ServerName: "localhost",
		ClientSessionCache: tls.NewLRUClientSessionCache(4)} // the second login resumes
	msg := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(msg, []byte(testMessage(user, "from swaks", "device test")), 0o644); err != nil {
		t.Fatal(err)
	}
	return []deviceClient{
		{"curl", func(t *testing.T, secret string) error {
			_, errOut, err := runTool(t, curlConfig(user, secret), nil, curl, "-sS", "--max-time", "20", "-K", "-",
				"--login-options", "AUTH=PLAIN", "--cacert", g.CertFile, "-X", "EXAMINE INBOX", "imaps://"+g.IMAPSAddr+"/INBOX")
			if err != nil {
				return fmt.Errorf("curl imaps: %w: %s", err, errOut)
			}
			return nil
		}},
		{"python", func(t *testing.T, secret string) error {
			if r := runPython(t, g.Passgate, viaTLS, "login", user, secret); !r.OK {
				return fmt.Errorf("python3 imaplib over TLS: %s", r.Error)
			}
			return nil
		}},
		{"go", func(t *testing.T, secret string) error {
			return goLogin(t, g, goCfg, user, secret)
		}},
		{"swaks", func(t *testing.T, secret string) error {
			r := runSwaks(t, g, sendOpts{Via: viaStartTLS, Mech: "PLAIN", User: user, Secret: secret,
				From: user, To: []string{user}, File: msg, QuitAfter: "AUTH"})
			if r.Exit != 0 {
				return fmt.Errorf("swaks STARTTLS AUTH PLAIN: exit %d: %s", r.Exit, r.Transcript)
			}
			return nil
		}},
	}
}

// goLogin logs in over implicit TLS with go-imap (crypto/tls) and cfg.
func goLogin(t *testing.T, g *smtpGate, cfg *tls.Config, user, secret string) error {
	t.Helper()
	c, err := imapclient.DialTLS(g.IMAPSAddr, &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatalf("dial passgate: %v", err)
	}
	defer c.Close()
	return c.Login(user, secret).Wait()
}

// Each client keeps its fingerprint across two connections (no drift
// event after the second), and clients with different TLS stacks have
// different ones. Run with -v to see them:
//
//	go test -count=1 -v -run TestDeviceFingerprints ./integration/
func TestDeviceFingerprints(t *testing.T) {
	g, user, clients := deviceGate(t)
	for _, c := range clients {
		p := g.createAppPassword(t, user, c.name)
		c.login(t, p.Password)
		c.login(t, p.Password)
	}
	listed := g.listed(t, user)
	fp := map[string]string{}
	for _, c := range clients {
		p := listed[c.name]
		if p.Bound == nil || p.Bound.Device.TLS == "" || p.Bound.Device.Network != "127.0.0.0/24" {
			t.Fatalf("%s: bound device %+v, want a TLS fingerprint from 127.0.0.0/24", c.name, p.Bound)
		}
		if len(p.Drift) != 0 {
			t.Errorf("%s: the second connection drifted: bound %+v, then %+v", c.name, p.Bound.Device, p.Drift)
		}
		fp[c.name] = p.Bound.Device.TLS
		t.Logf("%-6s TLS %s client %q", c.name, p.Bound.Device.TLS, p.Bound.Device.Client)
	}
	if got := listed["swaks"].Bound.Device.Client; got != "swaks.client.test" {
		t.Errorf("swaks bound client %q, want its EHLO name", got)
	}
	// curl, python3 and swaks (Perl) all use OpenSSL: say which of them
	// share a fingerprint, and assert only what holds across TLS stacks.
	for _, pair := range [][2]string{{"curl", "python"}, {"python", "swaks"}, {"curl", "swaks"}} {
		if fp[pair[0]] == fp[pair[1]] {
			t.Logf("%s and %s (both OpenSSL) share a fingerprint", pair[0], pair[1])
		} else {
			t.Logf("%s and %s (both OpenSSL) differ", pair[0], pair[1])
		}
	}
	for _, pair := range [][2]string{{"curl", "go"}, {"curl", "swaks"}, {"go", "swaks"}, {"python", "go"}} {
		if fp[pair[0]] == fp[pair[1]] {
			t.Errorf("%s and %s share the fingerprint %s", pair[0], pair[1], fp[pair[0]])
		}
	}
}

// A second client with a password bound to the first is drift: let in
// and recorded under notify, refused with NO [ALERT] naming the portal
// under block, let in again once the owner accepted it.
func TestDeviceDriftNotifyBlockAccept(t *testing.T) {
	g, user, clients := deviceGate(t)
	curl, goClient := clients[0], clients[2]
	p := g.createAppPassword(t, user, "phone")
	curl.login(t, p.Password) // binds curl

	// notify (the default): in, and recorded.
	goClient.login(t, p.Password)
	got := g.listed(t, user)["phone"]
	if len(got.Drift) != 1 || got.Drift[0].Refused || got.Drift[0].Device.TLS == got.Bound.Device.TLS {
		t.Fatalf("after a Go login under notify: drift %+v, bound %+v", got.Drift, got.Bound)
	}

	// block: refused with an alert naming the portal.
	g.run(t, "apppass", "policy", user, p.ID, "block")
	err := goClient.try(t, p.Password)
	var ierr *imap.Error
	ok := errors.As(err, &ierr)
	if !ok {
		t.Fatalf("Go login under block: %v, want NO [ALERT]", err)
	}
	wantCode(t, ierr, imap.ResponseCodeAlert, g.Portal)
	if strings.Contains(ierr.Text, p.Password) || strings.Contains(ierr.Text, spaceless(p.Password)) {
		t.Fatalf("the alert holds the secret: %q", ierr.Text)
	}
	t.Logf("refusal: NO [ALERT] %s", ierr.Text)
	curl.login(t, p.Password) // the bound device still gets in
	got = g.listed(t, user)["phone"]
	if n := len(got.Drift); n < 2 || !got.Drift[n-1].Refused {
		t.Fatalf("after the refusal: drift %+v, want a refused event last", got.Drift)
	}

	// accept-device: the Go client is the device now; curl is the drift.
	out := g.run(t, "apppass", "accept-device", user, p.ID)
	if !strings.Contains(out, "now bound") {
		t.Errorf("accept-device said %q", out)
	}
	goClient.login(t, p.Password)
	if err := curl.try(t, p.Password); err == nil {
		t.Errorf("curl got in after the Go client was accepted under block")
	}
	var recs []struct{ Result string }
	if err := json.Unmarshal([]byte(g.run(t, "user", "activity", user, "-n", "100", "--json")), &recs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Result] = true
	}
	for _, want := range []string{"device-first-use", "device-drift", "device-refused", "device-accepted"} {
		if !seen[want] {
			t.Errorf("activity of %s lacks %s", user, want)
		}
	}
	if list := g.run(t, "apppass", "list", user); !strings.Contains(list, got.Bound.Device.TLS) && !strings.Contains(list, "block") {
		t.Errorf("apppass list does not show the device and policy:\n%s", list)
	}
}
