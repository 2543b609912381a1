package upstream

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

func (u *IMAP) mode() Mode {
	if u.Mode == "" {
		return ModeMaster
	}
	return u.Mode
}

func (u *IMAP) separator() string {
	if u.Separator == "" {
		return "*"
	}
	return u.Separator
}

// checkUsername refuses, before anything is dialled, a login-master login
// whose user name holds the separator: "eve%bob" + "%" + "proxy" would make
// the upstream (Dovecot splits at the first separator) read "bob%proxy" as
// the master user. authn refuses such names already; this is the last line.
func (u *IMAP) checkUsername(user string) error {
	if u.mode() == ModeLoginMaster && strings.Contains(user, u.separator()) {
		return &RefusedError{Text: "username contains the master user separator " + strconv.Quote(u.separator())}
	}
	return nil
}

// authenticate logs in as l.Username in the configured mode and returns the
// tagged OK. On return w.caps holds only capabilities sent after the login
// command (nil if none were).
func (u *IMAP) authenticate(w *wire, l Login) (*response, error) {
	switch u.mode() {
	case ModeMaster:
		// RFC 4616 §2: message = [authzid] NUL authcid NUL passwd.
		return authPlain(w, l.Username, u.MasterUser, u.MasterSecret)
	case ModeLoginMaster:
		return login(w, l.Username+u.separator()+u.MasterUser, u.MasterSecret)
	case ModePassthrough:
		if w.caps == nil {
			if err := preLoginCapability(w); err != nil {
				return nil, err
			}
		}
		if w.hasCap("AUTH=PLAIN") {
			return authPlain(w, "", l.Username, l.Password)
		}
		return login(w, l.Username, l.Password)
	}
	return nil, fmt.Errorf("upstream login: %w: unknown mode %q", ErrUnavailable, u.Mode)
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
