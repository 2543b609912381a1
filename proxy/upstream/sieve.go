package upstream

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// Sieve is a ManageSieve upstream (RFC 5804): a Config whose methods speak
// ManageSieve (Config.Sieve). It logs in with AUTHENTICATE "PLAIN" only:
// the master user as authcid and the user as authzid (master), the
// joined name (login-master) or the client's own (passthrough).
type Sieve Config

// Sieve returns the ManageSieve client of the upstream c describes.
func (c Config) Sieve() *Sieve { u := Sieve(c); return &u }

func (u *Sieve) config() *Config { return (*Config)(u) }

// LogValue names the upstream by its address only.
func (u Sieve) LogValue() slog.Value { return Config(u).LogValue() }

// NeedsClientSecret reports whether Login uses Login.Password.
func (u *Sieve) NeedsClientSecret() bool { return u.config().authenticator().needsClientSecret() }

// Validate reports what is wrong with the Config for ManageSieve.
func (u *Sieve) Validate() error { return u.config().validate(sieveProtocol) }

// Login dials the upstream and logs in as l.Username; the returned
// connection is positioned after the upstream's OK. Errors wrap
// ErrUnavailable (NO (TRYLATER) too), or are a *RefusedError.
func (u *Sieve) Login(ctx context.Context, l Login) (*Conn, error) {
	var c *Conn
	k, err := u.config().login(ctx, sieveProtocol, l, func(k *link, cred credential) error {
		w := newWire(k)
		if _, err := u.greet(w); err != nil {
			return err
		}
		m, _ := cred.choose(func(name string) bool { return name == mechPlain })
		if strings.ContainsRune(m.authzid+m.username+m.secret, 0) {
			return &RefusedError{Text: "credentials contain a NUL byte"}
		}
		_, ir, _ := sasl.NewPlainClient(m.authzid, m.username, m.secret).Start()
		blob := base64.StdEncoding.EncodeToString(ir)
		w.secrets = append(w.secrets, m.secret, blob)
		r, err := sieveSend(w, "login", `AUTHENTICATE "PLAIN" "`+blob+"\"\r\n")
		if err != nil {
			return err
		}
		switch {
		case r.status == "OK":
		case r.code == "TRYLATER":
			return fmt.Errorf("upstream login: %w: NO (TRYLATER) %s", ErrUnavailable, w.withhold(r.text))
		case r.status == "NO":
			return &RefusedError{Code: r.code, Text: w.withhold(r.text)}
		default:
			return fmt.Errorf("upstream login: %w: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
		}
		c = &Conn{Text: w.withhold(r.text)}
		if n := w.br.Buffered(); n > 0 {
			rest, _ := w.br.Peek(n)
			c.Buffered = append(c.Buffered, rest...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.Conn = k.conn
	return c, nil
}

// Capabilities dials the upstream and returns its capability lines (after
// STARTTLS as configured), each as sent ("\"SIEVE\" \"fileinto ...\""), then
// logs out.
func (u *Sieve) Capabilities(ctx context.Context) ([]string, error) {
	if err := u.config().usable(sieveProtocol); err != nil {
		return nil, err
	}
	k, err := u.config().connect(ctx)
	if err != nil {
		return nil, err
	}
	w := newWire(k)
	defer w.close()
	caps, err := u.greet(w)
	if err != nil {
		return nil, err
	}
	if _, err := sieveSend(w, "logout", "LOGOUT\r\n"); err != nil {
		return nil, err
	}
	return caps, nil
}

// greet reads the capability greeting (RFC 5804 §1.7) and, as configured,
// runs STARTTLS and reads the capabilities sent again over TLS (§2.2).
func (u *Sieve) greet(w *wire) ([]string, error) {
	caps, err := sieveCapabilities(w, "greeting")
	if err != nil {
		return nil, err
	}
	if u.config().tlsMode() != TLSStartTLS {
		return caps, nil
	}
	r, err := sieveSend(w, "starttls", "STARTTLS\r\n")
	if err != nil {
		return nil, err
	}
	if r.status != "OK" {
		return nil, fmt.Errorf("upstream starttls: %w: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
	}
	if w.br.Buffered() > 0 {
		return nil, fmt.Errorf("upstream starttls: %w: plaintext bytes after the STARTTLS response (injection attempt?)", ErrUnavailable)
	}
	if err := w.link.handshake(); err != nil {
		return nil, err
	}
	w.br.Reset(w.link.conn)
	return sieveCapabilities(w, "starttls")
}

// sieveCapabilities reads capability lines up to the OK that ends them.
func sieveCapabilities(w *wire, op string) ([]string, error) {
	var caps []string
	for {
		line, err := pop3Line(w, op)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(line, `"`) {
			caps = append(caps, line)
			continue
		}
		r, err := parseSieveResponse(w, op, line)
		if err != nil {
			return nil, err
		}
		if r.status != "OK" {
			return nil, fmt.Errorf("upstream %s: %w: %s %s", op, ErrUnavailable, r.status, w.withhold(r.text))
		}
		return caps, nil
	}
}

// sieveResponse is OK, NO or BYE with an optional (code) and text.
type sieveResponse struct{ status, code, text string }

func sieveSend(w *wire, op, line string) (*sieveResponse, error) {
	if _, err := w.link.conn.Write([]byte(line)); err != nil {
		return nil, w.unavailable(op, err)
	}
	l, err := pop3Line(w, op)
	if err != nil {
		return nil, err
	}
	return parseSieveResponse(w, op, l)
}

// parseSieveResponse parses response-oknobye (RFC 5804 §4): the text is a
// quoted string or a literal, which is read.
func parseSieveResponse(w *wire, op, line string) (*sieveResponse, error) {
	status, rest, _ := strings.Cut(line, " ")
	r := &sieveResponse{status: strings.ToUpper(status)}
	if r.status != "OK" && r.status != "NO" && r.status != "BYE" {
		return nil, fmt.Errorf("upstream %s: %w: unexpected response %q", op, ErrUnavailable, w.withhold(line))
	}
	if strings.HasPrefix(rest, "(") {
		if i := strings.IndexByte(rest, ')'); i > 0 {
			r.code, _, _ = strings.Cut(strings.ToUpper(rest[1:i]), " ")
			rest = strings.TrimPrefix(rest[i+1:], " ")
		}
	}
	if strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}") {
		n, err := strconv.Atoi(strings.TrimSuffix(rest[1:len(rest)-1], "+"))
		if err != nil || n < 0 || n > maxResponse {
			return nil, fmt.Errorf("upstream %s: %w: bad literal %q", op, ErrUnavailable, rest)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(w.br, b); err != nil {
			return nil, w.unavailable(op, err)
		}
		if _, err := pop3Line(w, op); err != nil { // the CRLF after the literal
			return nil, err
		}
		rest = string(b)
	} else if s, err := strconv.Unquote(rest); err == nil {
		rest = s
	}
	r.text = rest
	return r, nil
}
