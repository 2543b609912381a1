package upstream

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// imapLogin logs in with the credential's first mechanism the upstream
// offers (AUTHENTICATE PLAIN with AUTH=PLAIN; the LOGIN command unless
// LOGINDISABLED) and returns the tagged OK. While the capabilities are
// unknown the first mechanism is taken, unless the credential asks to learn
// them first. With none offered nothing is sent: a LOGINDISABLED upstream
// without AUTH=PLAIN would see the secret in the clear. On return w.caps
// holds only capabilities sent after the login command (nil if none were).
func imapLogin(w *wire, cred credential) (*response, error) {
	if w.caps == nil && cred.learn {
		if err := preLoginCapability(w); err != nil {
			return nil, err
		}
	}
	m, ok := cred.choose(w.offers)
	if !ok {
		return nil, fmt.Errorf("upstream login: %w: the upstream offers neither %s (STARTTLS first?)", ErrUnavailable, cred.names())
	}
	switch {
	case m.name == mechLogin:
		return login(w, m.username, m.secret)
	case m.isOAuth():
		return authOAuth(w, m)
	}
	// RFC 4616 §2: message = [authzid] NUL authcid NUL passwd.
	return authPlain(w, m.authzid, m.username, m.secret)
}

// offers reports whether the upstream takes the mechanism: always while
// its capabilities are unknown.
func (w *wire) offers(mech string) bool {
	switch {
	case w.caps == nil:
		return true
	case mech == mechLogin:
		return !w.hasCap("LOGINDISABLED") // RFC 3501 §6.2.3
	}
	return w.hasCap("AUTH=" + mech)
}

// authPlain sends AUTHENTICATE PLAIN (RFC 3501 §6.2.2), with the response
// inline if the upstream announced SASL-IR (RFC 4959 §3), otherwise after
// its continuation.
func authPlain(w *wire, authzid, authcid, password string) (*response, error) {
	if strings.ContainsRune(authzid+authcid+password, 0) {
		return nil, &RefusedError{Text: "credentials contain a NUL byte"}
	}
	_, ir, _ := sasl.NewPlainClient(authzid, authcid, password).Start()
	blob := base64.StdEncoding.EncodeToString(ir)
	w.secrets = append(w.secrets, password, blob)
	tag := w.nextTag()
	var chunks [][]byte
	if w.hasCap("SASL-IR") {
		chunks = [][]byte{[]byte(tag + " AUTHENTICATE PLAIN " + blob + "\r\n")}
	} else {
		chunks = [][]byte{[]byte(tag + " AUTHENTICATE PLAIN\r\n"), []byte(blob + "\r\n")}
	}
	w.caps = nil
	return loginResult(w, tag, chunks)
}

// authOAuth sends AUTHENTICATE XOAUTH2 or OAUTHBEARER (RFC 3501 §6.2.2,
// RFC 7628 §4): the initial response inline with SASL-IR (RFC 4959), else
// after the server's empty continuation. A challenge after it is the
// server's error report, answered as the mechanism requires (the client's
// Next; "*" cancels a second one); a NO is then judged by it
// (oauthRefusal).
func authOAuth(w *wire, m mechanism) (*response, error) {
	sc := m.oauthClient()
	mech, ir, err := sc.Start()
	if err != nil {
		return nil, &RefusedError{Text: "the user name or the access token cannot be sent: it contains a control byte"}
	}
	blob := base64.StdEncoding.EncodeToString(ir)
	w.secrets = append(w.secrets, m.secret, blob)
	tag := w.nextTag()
	line := tag + " AUTHENTICATE " + mech
	pending := blob // the initial response, until sent
	if w.hasCap("SASL-IR") {
		line, pending = line+" "+blob, ""
	}
	w.caps = nil
	if err := w.write("login", line); err != nil {
		return nil, err
	}
	for {
		r, err := w.await("login", tag, true)
		if err != nil {
			return nil, err
		}
		switch {
		case r.tag == "+" && pending != "":
			err = w.write("login", pending)
			pending = ""
		case r.tag == "+":
			// A challenge that is not base64 decodes partly: the client
			// finds no JSON in it, a malformed failure.
			challenge, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(r.text))
			resp, nerr := sc.Next(challenge)
			if nerr != nil {
				err = w.write("login", "*")
			} else {
				err = w.write("login", base64.StdEncoding.EncodeToString(resp))
			}
		case r.status == "OK":
			return r, nil
		case r.code == "UNAVAILABLE":
			return nil, fmt.Errorf("upstream login: %w: NO [UNAVAILABLE] %s", ErrUnavailable, w.withhold(r.text))
		case r.status == "BAD" && sc.Failure() == nil:
			return nil, fmt.Errorf("upstream login: %w: AUTHENTICATE %s: BAD %s", ErrUnavailable, mech, w.withhold(r.text))
		default:
			return nil, oauthRefusal(sc, r.code, w.withhold(r.text))
		}
		if err != nil {
			return nil, err
		}
	}
}

// write sends one line of a command and its CRLF.
func (w *wire) write(op, line string) error {
	if _, err := w.link.conn.Write([]byte(line + "\r\n")); err != nil {
		return w.unavailable(op, err)
	}
	return nil
}

// login sends LOGIN (RFC 3501 §6.2.3) with both arguments as quoted strings
// or literals.
func login(w *wire, user, password string) (*response, error) {
	w.secrets = append(w.secrets, password)
	tag := w.nextTag()
	c := newCommand(tag, "LOGIN")
	if err := c.astring(user); err != nil {
		return nil, &RefusedError{Text: "username " + err.Error()}
	}
	if err := c.astring(password); err != nil {
		return nil, &RefusedError{Text: "password " + err.Error()}
	}
	w.caps = nil
	return loginResult(w, tag, c.done())
}

// loginResult sends the login command and classifies the answer: OK is
// returned; NO [UNAVAILABLE] (RFC 5530 §3) is ErrUnavailable; other NO or
// BAD answers are a *RefusedError.
func loginResult(w *wire, tag string, chunks [][]byte) (*response, error) {
	r, err := w.send("login", tag, chunks...)
	if err != nil {
		return nil, err
	}
	switch {
	case r.status == "OK":
		return r, nil
	case r.code == "UNAVAILABLE":
		return nil, fmt.Errorf("upstream login: %w: NO [UNAVAILABLE] %s", ErrUnavailable, w.withhold(r.text))
	case r.tag == "+":
		return nil, w.garbage("login", r)
	}
	return nil, &RefusedError{Code: r.code, Text: w.withhold(r.text)}
}

// preLoginCapability asks for the capabilities when the greeting did not
// carry them (or STARTTLS made us forget them).
func preLoginCapability(w *wire) error {
	tag := w.nextTag()
	r, err := w.send("capability", tag, []byte(tag+" CAPABILITY\r\n"))
	if err != nil {
		return err
	}
	if r.status != "OK" {
		return fmt.Errorf("upstream capability: %w: %s %s", ErrUnavailable, r.status, w.withhold(r.text))
	}
	if w.caps == nil {
		w.caps = []string{}
	}
	return nil
}

// sendID tells the upstream who the client is (RFC 2971); Dovecot takes
// x-originating-ip/port and x-session-id from trusted proxies. A NO or BAD
// answer is ignored: the upstream just does not take it.
func sendID(w *wire, l Login) error {
	var fields []string
	if l.ClientIP.IsValid() {
		fields = append(fields,
			"x-originating-ip", l.ClientIP.Addr().Unmap().String(),
			"x-originating-port", strconv.Itoa(int(l.ClientIP.Port())))
	}
	if l.SessionID != "" && !needsLiteral(l.SessionID) && !strings.ContainsRune(l.SessionID, 0) {
		fields = append(fields, "x-session-id", l.SessionID)
	}
	if len(fields) == 0 {
		return nil
	}
	tag := w.nextTag()
	line := []byte(tag + " ID (")
	for i, f := range fields {
		if i > 0 {
			line = append(line, ' ')
		}
		line = appendQuoted(line, f)
	}
	line = append(line, ")\r\n"...)
	_, err := w.send("id", tag, line)
	return err
}
