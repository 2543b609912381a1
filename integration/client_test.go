package integration

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/passgate/passgate/internal/testcert"
)

// Ways a client reaches passgate.
const (
	viaPlain    = "plain"    // cleartext on the listen port (needs allow_cleartext)
	viaStartTLS = "starttls" // STARTTLS on the listen port
	viaTLS      = "tls"      // implicit TLS on listen_tls
)

// tlsConfig trusts passgate's self-signed certificate.
func (pg *Passgate) tlsConfig(t testing.TB) *tls.Config {
	return &tls.Config{RootCAs: testcert.Pool(t, pg.CertFile), ServerName: "localhost"}
}

// dial connects go-imap's imapclient to passgate; the client is closed when
// the test ends.
func (pg *Passgate) dial(t testing.TB, via string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	return pg.dialFrom(t, via, h, nil)
}

// dialFrom is dial from a chosen loopback source address (Linux answers on
// all of 127.0.0.0/8), so that the address passgate forwards upstream can be
// told apart from its own.
func (pg *Passgate) dialFrom(t testing.TB, via string, h *imapclient.UnilateralDataHandler, src net.IP) *imapclient.Client {
	t.Helper()
	opts := &imapclient.Options{TLSConfig: pg.tlsConfig(t), UnilateralDataHandler: h}
	if src != nil {
		opts.Dialer = &net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: src}}
	}
	var (
		c   *imapclient.Client
		err error
	)
	switch via {
	case viaPlain:
		c, err = imapclient.DialInsecure(pg.IMAPAddr, opts)
	case viaStartTLS:
		c, err = imapclient.DialStartTLS(pg.IMAPAddr, opts)
	case viaTLS:
		c, err = imapclient.DialTLS(pg.IMAPSAddr, opts)
	default:
		t.Fatalf("dial: unknown way %q", via)
	}
	if err != nil {
		t.Fatalf("dial passgate (%s): %v", via, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatalf("greeting from passgate (%s): %v", via, err)
	}
	return c
}

// login dials passgate and logs in, failing the test if the login fails.
func (pg *Passgate) login(t testing.TB, via, user, secret string) *imapclient.Client {
	t.Helper()
	c := pg.dial(t, via, nil)
	if err := c.Login(user, secret).Wait(); err != nil {
		t.Fatalf("LOGIN %s through passgate (%s): %v", user, via, err)
	}
	return c
}

// loginError dials passgate, tries to log in and returns the IMAP error the
// login got, failing the test if it succeeded or failed otherwise.
func (pg *Passgate) loginError(t testing.TB, via, user, secret string) *imap.Error {
	t.Helper()
	c := pg.dial(t, via, nil)
	err := c.Login(user, secret).Wait()
	if err == nil {
		t.Fatalf("LOGIN %s through passgate succeeded, want a refusal", user)
	}
	var ierr *imap.Error
	if !errors.As(err, &ierr) {
		t.Fatalf("LOGIN %s through passgate: %v, want a tagged NO", user, err)
	}
	return ierr
}

// wantCode checks an IMAP error's response code (RFC 5530) and that its text
// contains want.
func wantCode(t testing.TB, err *imap.Error, code imap.ResponseCode, text string) {
	t.Helper()
	if err.Type != imap.StatusResponseTypeNo || err.Code != code || !strings.Contains(err.Text, text) {
		t.Fatalf("got %s [%s] %q, want NO [%s] with %q", err.Type, err.Code, err.Text, code, text)
	}
}

// selectInbox selects INBOX and returns the number of messages.
func selectInbox(t testing.TB, c *imapclient.Client) uint32 {
	t.Helper()
	data, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	return data.NumMessages
}

// spaceless and upper are how users mistype app passwords; passgate must
// accept both.
func spaceless(p string) string { return strings.ReplaceAll(p, " ", "") }
func upper(p string) string     { return strings.ToUpper(p) }
