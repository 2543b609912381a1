package upstream

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/emersion/go-sasl"
)

// POP3 is a POP3 upstream (RFC 1939): a Config whose methods speak POP3
// (Config.POP3). Login may be called concurrently.
type POP3 Config

// POP3 returns the POP3 client of the upstream c describes.
func (c Config) POP3() *POP3 { u := POP3(c); return &u }

func (u *POP3) config() *Config { return (*Config)(u) }

// LogValue names the upstream by its address only.
func (u POP3) LogValue() slog.Value { return Config(u).LogValue() }

// NeedsClientSecret reports whether Login uses Login.Password
// (ModePassthrough); otherwise the front end must not pass it on.
func (u *POP3) NeedsClientSecret() bool {
	return u.config().authenticator().needsClientSecret()
}

// Validate reports what is wrong with the Config for POP3: each problem is
// a *FieldError.
func (u *POP3) Validate() error { return u.config().validate(pop3Protocol) }

// Login dials the upstream and logs in as l.Username: AUTH PLAIN with an
// initial response (RFC 5034; the master user as authcid, the user as
// authzid), or USER and PASS (RFC 1939 §7) for the LOGIN mechanism
// (login-master: "USER user*master"). The returned connection is
// positioned after the upstream's +OK and belongs to the caller; Text is
// that +OK's text. Errors wrap ErrUnavailable, or are a *RefusedError
// (Code: the RFC 3206 response code, e.g. "AUTH").
func (u *POP3) Login(ctx context.Context, l Login) (*Conn, error) {
	var c *Conn
	k, err := u.config().login(ctx, pop3Protocol, l, func(k *link, cred credential) (err error) {
		c, err = u.dialogue(newWire(k), cred)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.Conn = k.conn
	return c, nil
}

// Check dials the upstream, reads its greeting (after TLS as configured)
// and quits: a health check that needs no credentials.
func (u *POP3) Check(ctx context.Context) error {
	if err := u.config().usable(pop3Protocol); err != nil {
		return err
	}
	k, err := u.config().connect(ctx)
	if err != nil {
		return err
	}
	w := newWire(k)
	defer w.close()
	if err := u.greet(w); err != nil {
		return err
	}
	_, err = pop3Command(w, "quit", "QUIT\r\n")
	return err
}

// dialogue runs the greeting, STLS as configured, CAPA when the credential
// must learn the mechanisms first, and the login.
func (u *POP3) dialogue(w *wire, cred credential) (*Conn, error) {
	if err := u.greet(w); err != nil {
		return nil, err
	}
	offered := func(string) bool { return true }
	if cred.learn {
		caps, err := pop3Capa(w)
		if err != nil {
			return nil, err
		}
		offered = caps.offers
	}
	m, ok := cred.choose(offered)
	if !ok {
		return nil, fmt.Errorf("upstream login: %w: the upstream offers neither %s", ErrUnavailable, cred.names())
	}
	if strings.ContainsRune(m.authzid+m.username+m.secret, 0) || strings.ContainsAny(m.username+m.secret, "\r\n") {
		return nil, &RefusedError{Text: "credentials contain a NUL, CR or LF byte"}
	}
	var text string
	var err error
	if m.name == mechLogin {
		text, err = pop3UserPass(w, m)
	} else {
		text, err = pop3AuthPlain(w, m)
	}
	if err != nil {
		return nil, err
	}
	c := &Conn{Text: w.withhold(text)}
	if n := w.br.Buffered(); n > 0 {
		rest, _ := w.br.Peek(n)
		c.Buffered = append(c.Buffered, rest...)
	}
	return c, nil
}

// greet reads the greeting (+OK, RFC 1939 §4), then runs STLS if
// configured (RFC 2595 §4).
func (u *POP3) greet(w *wire) error {
	r, err := pop3Read(w, "greeting")
	if err != nil {
		return err
	}
	if !r.ok {
		return fmt.Errorf("upstream greeting: %w: -ERR %s", ErrUnavailable, w.withhold(r.text))
	}
	if u.config().tlsMode() != TLSStartTLS {
		return nil
	}
	if _, err := pop3Command(w, "stls", "STLS\r\n"); err != nil {
		return err
	}
	if w.br.Buffered() > 0 {
		return fmt.Errorf("upstream stls: %w: plaintext bytes after the STLS response (injection attempt?)", ErrUnavailable)
	}
	if err := w.link.handshake(); err != nil {
		return err
	}
	w.br.Reset(w.link.conn)
	return nil
}

// pop3AuthPlain sends AUTH PLAIN with an initial response (RFC 5034 §4).
func pop3AuthPlain(w *wire, m mechanism) (string, error) {
	_, ir, _ := sasl.NewPlainClient(m.authzid, m.username, m.secret).Start()
	blob := base64.StdEncoding.EncodeToString(ir)
	w.secrets = append(w.secrets, m.secret, blob)
	return pop3LoginResult(w, "AUTH PLAIN "+blob+"\r\n")
}

// pop3UserPass sends USER, then PASS (RFC 1939 §7).
func pop3UserPass(w *wire, m mechanism) (string, error) {
	w.secrets = append(w.secrets, m.secret)
	r, err := pop3Read(w, "user", "USER "+m.username+"\r\n")
	if err != nil {
		return "", err
	}
	if !r.ok {
		return "", pop3Refused(w, r)
	}
	return pop3LoginResult(w, "PASS "+m.secret+"\r\n")
}

// pop3LoginResult sends the login command and classifies the answer: +OK
// is returned; -ERR [SYS/TEMP] (RFC 3206 §4) is ErrUnavailable; other
// -ERR answers are a *RefusedError.
func pop3LoginResult(w *wire, line string) (string, error) {
	r, err := pop3Read(w, "login", line)
	if err != nil {
		return "", err
	}
	if r.continuation {
		return "", fmt.Errorf("upstream login: %w: unexpected continuation", ErrUnavailable)
	}
	if !r.ok {
		return "", pop3Refused(w, r)
	}
	return r.text, nil
}

func pop3Refused(w *wire, r *pop3Reply) error {
	if r.code == "SYS/TEMP" {
		return fmt.Errorf("upstream login: %w: -ERR [SYS/TEMP] %s", ErrUnavailable, w.withhold(r.text))
	}
	return &RefusedError{Code: r.code, Text: w.withhold(r.text)}
}

// pop3Command sends line and wants +OK.
func pop3Command(w *wire, op, line string) (*pop3Reply, error) {
	r, err := pop3Read(w, op, line)
	if err != nil {
		return nil, err
	}
	if !r.ok {
		return nil, fmt.Errorf("upstream %s: %w: -ERR %s", op, ErrUnavailable, w.withhold(r.text))
	}
	return r, nil
}

// pop3Caps is what CAPA said (RFC 2449 §5).
type pop3Caps struct {
	user bool     // USER
	sasl []string // SASL mechanisms
}

func (c pop3Caps) offers(mech string) bool {
	if mech == mechLogin {
		return c.user
	}
	for _, m := range c.sasl {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// pop3Capa asks for the capabilities; an upstream without CAPA offers
// USER only (RFC 1939).
func pop3Capa(w *wire) (pop3Caps, error) {
	r, err := pop3Read(w, "capa", "CAPA\r\n")
	if err != nil {
		return pop3Caps{}, err
	}
	if !r.ok {
		return pop3Caps{user: true}, nil
	}
	var caps pop3Caps
	for {
		line, err := pop3Line(w, "capa")
		if err != nil {
			return pop3Caps{}, err
		}
		if line == "." {
			return caps, nil
		}
		f := strings.Fields(strings.ToUpper(line))
		switch {
		case len(f) == 0:
		case f[0] == "USER":
			caps.user = true
		case f[0] == "SASL":
			caps.sasl = f[1:]
		}
	}
}

// pop3Reply is a status line: +OK, -ERR or a "+ " continuation.
type pop3Reply struct {
	ok, continuation bool
	code             string // RFC 2449 §8 response code, upper case
	text             string
}

// pop3Read writes send (if any) and reads one status line.
func pop3Read(w *wire, op string, send ...string) (*pop3Reply, error) {
	for _, s := range send {
		if _, err := w.link.conn.Write([]byte(s)); err != nil {
			return nil, w.unavailable(op, err)
		}
	}
	line, err := pop3Line(w, op)
	if err != nil {
		return nil, err
	}
	r := &pop3Reply{}
	var rest string
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		r.ok, rest = true, strings.TrimPrefix(line[3:], " ")
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		rest = strings.TrimPrefix(line[4:], " ")
	case line == "+" || strings.HasPrefix(line, "+ "):
		r.continuation = true
		return r, nil
	default:
		return nil, fmt.Errorf("upstream %s: %w: unexpected response %q", op, ErrUnavailable, w.withhold(line))
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i > 0 {
			r.code = strings.ToUpper(rest[1:i])
			rest = strings.TrimPrefix(rest[i+1:], " ")
		}
	}
	r.text = rest
	return r, nil
}

// pop3Line reads one line of at most maxResponse bytes, without CRLF.
func pop3Line(w *wire, op string) (string, error) {
	var b []byte
	for {
		chunk, err := w.br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxResponse {
			return "", fmt.Errorf("upstream %s: %w: response line too long", op, ErrUnavailable)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", w.unavailable(op, err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
}
