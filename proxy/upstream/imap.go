package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// IMAP is an IMAP upstream: a Config whose methods speak IMAP
// (Config.IMAP). Login, Check and Capabilities may be called concurrently.
type IMAP Config

func (u *IMAP) config() *Config { return (*Config)(u) }

// LogValue names the upstream by its address only.
func (u IMAP) LogValue() slog.Value { return Config(u).LogValue() }

// NeedsClientSecret reports whether Login uses Login.Password
// (ModePassthrough); otherwise the front end must not pass it on.
func (u *IMAP) NeedsClientSecret() bool {
	return u.config().authenticator().needsClientSecret()
}

// Validate reports what is wrong with the Config for IMAP: each problem is
// a *FieldError.
func (u *IMAP) Validate() error { return u.config().validate(imapProtocol) }

// Login dials the upstream and logs in as l.Username; the returned
// connection is positioned after the upstream's tagged OK and belongs to the
// caller. Errors wrap ErrUnavailable, or are a *RefusedError.
func (u *IMAP) Login(ctx context.Context, l Login) (*Conn, error) {
	var c *Conn
	k, err := u.config().login(ctx, imapProtocol, l, func(k *link, cred credential) (err error) {
		w := k.greeted
		if w == nil {
			w = newWire(k)
			if err := u.greet(w); err != nil {
				return err
			}
		}
		c, err = u.dialogue(w, l, cred)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.Conn = k.conn
	return c, nil
}

// dialogue runs, after the greeting and STARTTLS (greet), ID, the login
// itself, and CAPABILITY if the OK did not carry it.
func (u *IMAP) dialogue(w *wire, l Login, cred credential) (*Conn, error) {
	if u.SendID && (w.caps == nil || w.hasCap("ID")) {
		if err := sendID(w, l); err != nil {
			return nil, err
		}
	}
	ok, err := imapLogin(w, cred)
	if err != nil {
		return nil, err
	}
	c := &Conn{Text: w.withhold(ok.text)}
	if w.caps == nil {
		if c.Buffered, err = postLoginCapability(w); err != nil {
			return nil, err
		}
	}
	c.Capability = strings.Join(w.caps, " ")
	if n := w.br.Buffered(); n > 0 {
		rest, _ := w.br.Peek(n)
		c.Buffered = append(c.Buffered, rest...)
	}
	return c, nil
}

// Close closes the pool's ready connections (Config.Pool) and ends its
// dials; Login dials each connection itself afterwards. It returns nil.
func (u *IMAP) Close() error {
	u.pool.close()
	return nil
}

// Check dials the upstream, reads its greeting (after TLS as configured)
// and logs out: a health check that needs no credentials.
func (u *IMAP) Check(ctx context.Context) error {
	_, err := u.Capabilities(ctx)
	return err
}

// Capabilities dials the upstream, reads its pre-login capabilities (from
// the greeting, else with CAPABILITY; with STARTTLS, those announced over
// TLS) and logs out. It needs no credentials; DialTimeout and LoginTimeout
// bound it as they bound a login.
func (u *IMAP) Capabilities(ctx context.Context) ([]string, error) {
	if err := u.config().usable(imapProtocol); err != nil {
		return nil, err
	}
	w, err := u.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if w.caps == nil {
		if err := preLoginCapability(w); err != nil {
			return nil, err
		}
	}
	caps := w.caps
	tag := w.nextTag()
	r, err := w.send("logout", tag, []byte(tag+" LOGOUT\r\n"))
	if err != nil {
		return nil, err
	}
	if r.status != "OK" {
		return nil, w.garbage("logout", r)
	}
	return caps, nil
}

// connect dials (with implicit TLS as configured), reads the greeting and
// runs STARTTLS as configured. The returned wire holds the login deadline.
func (u *IMAP) connect(ctx context.Context) (*wire, error) {
	k, err := u.config().connect(ctx)
	if err != nil {
		return nil, err
	}
	w := newWire(k)
	if err := u.greet(w); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// ready connects for the pool: connect, and over TLS one NOOP, whose
// answer comes after whatever the server sent once the handshake was
// done (TLS 1.3 session tickets), so that the connection then waits with
// nothing to read: the pool takes any byte that arrives later for a close
// coming (idle).
func (u *IMAP) ready(ctx context.Context) (*wire, error) {
	w, err := u.connect(ctx)
	if err != nil || u.config().tlsMode() == TLSNone {
		return w, err
	}
	tag := w.nextTag()
	r, err := w.send("noop", tag, []byte(tag+" NOOP\r\n"))
	if err == nil && r.status != "OK" {
		err = w.garbage("noop", r)
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// greet reads the greeting, then runs STARTTLS if configured.
func (u *IMAP) greet(w *wire) error {
	if err := greeting(w); err != nil {
		return err
	}
	if u.config().tlsMode() == TLSStartTLS {
		return startTLS(w)
	}
	return nil
}

// greeting reads the server greeting: it must be OK (RFC 3501 §7.1.1).
// PREAUTH would log us in as someone already, BYE refuses us.
func greeting(w *wire) error {
	r, err := w.read("greeting")
	if err != nil {
		return err
	}
	if r.tag != "*" || r.status == "" {
		return w.garbage("greeting", r)
	}
	switch r.status {
	case "OK":
		if caps, ok := r.capabilities(); ok {
			w.caps = caps
		}
		return nil
	case "BYE":
		return fmt.Errorf("upstream greeting: %w: BYE %s", ErrUnavailable, w.withhold(r.text))
	}
	return w.garbage("greeting", r)
}

// startTLS upgrades the connection (RFC 3501 §6.2.1) and forgets the
// capabilities learnt in plaintext.
func startTLS(w *wire) error {
	tag := w.nextTag()
	r, err := w.send("starttls", tag, []byte(tag+" STARTTLS\r\n"))
	if err != nil {
		return err
	}
	if r.status != "OK" {
		return fmt.Errorf("upstream starttls: %w: refused: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
	}
	if w.br.Buffered() > 0 {
		return fmt.Errorf("upstream starttls: %w: plaintext bytes after the STARTTLS response (injection attempt?)", ErrUnavailable)
	}
	w.caps = nil
	if err := w.link.handshake(); err != nil {
		return err
	}
	w.br.Reset(w.link.conn)
	return nil
}

// postLoginCapability asks for the capabilities after login (the tagged OK
// had none). Untagged responses other than CAPABILITY are the client's:
// their bytes are returned to be forwarded.
func postLoginCapability(w *wire) ([]byte, error) {
	tag := w.nextTag()
	if _, err := w.link.conn.Write([]byte(tag + " CAPABILITY\r\n")); err != nil {
		return nil, w.unavailable("capability", err)
	}
	var forward []byte
	for {
		r, err := w.read("capability")
		if err != nil {
			return nil, err
		}
		if caps, ok := r.capabilities(); ok {
			w.caps = caps
		}
		switch {
		case r.tag == "*" && r.kind == "CAPABILITY":
			continue
		case r.tag == "*":
			forward = append(forward, r.raw...)
		case r.tag == tag && r.status == "OK":
			if w.caps == nil {
				w.caps = []string{}
			}
			return forward, nil
		case r.tag == tag:
			return nil, fmt.Errorf("upstream capability: %w: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
		default:
			return nil, w.garbage("capability", r)
		}
	}
}
