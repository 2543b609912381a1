package imap

import (
	"context"
	"strings"
)

// ownCapabilities are what passgate itself implements before login, first
// in every pre-login list (RFC 3501 §7.2.1, RFC 4959, RFC 7888, RFC 2971).
var ownCapabilities = []string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID"}

// defaultUpstreamCapabilities are announced before login, after passgate's
// own, when the upstream's pre-login list could not be learnt at start:
// what clients that read the list only once (Python's imaplib) look for.
var defaultUpstreamCapabilities = []string{"IDLE", "ENABLE"}

// capabilityProber is implemented by an Upstream that can tell its
// pre-login capabilities without logging in (upstream.IMAP does).
type capabilityProber interface {
	Capabilities(ctx context.Context) ([]string, error)
}

// learnCapabilities sets what the pre-login lists announce besides
// passgate's own: the upstream's pre-login capabilities minus those passgate
// owns there (ownedCapability), or defaultUpstreamCapabilities when the
// Upstream cannot be probed or the probe fails. Serve runs it once, before
// the first connection.
func (s *Server) learnCapabilities() {
	caps, ok := s.probeCapabilities(s.life.Context()) // Close cancels it
	if !ok {
		caps = defaultUpstreamCapabilities
	}
	s.upstreamCaps.Store(&caps)
}

// RefreshCapabilities probes the upstream's pre-login capabilities again,
// for the connections that start afterwards: a configuration reload calls
// it, since the upstream may have changed (upgraded, reconfigured) since
// Serve learnt them. If the probe fails, the list announced so far stays.
func (s *Server) RefreshCapabilities(ctx context.Context) {
	if caps, ok := s.probeCapabilities(ctx); ok {
		s.upstreamCaps.Store(&caps)
	}
}

// probeCapabilities asks the Upstream for its pre-login capabilities and
// returns those passgate repeats; ok is false when it cannot be probed or
// the probe failed (logged).
func (s *Server) probeCapabilities(ctx context.Context) (caps []string, ok bool) {
	p, ok := s.Upstream.(capabilityProber)
	if !ok {
		return nil, false
	}
	all, err := p.Capabilities(ctx)
	if err != nil {
		s.logger().Warn("imap upstream capability probe failed; announcing defaults or the last list learnt before login",
			"err", err, "defaults", strings.Join(defaultUpstreamCapabilities, " "))
		return nil, false
	}
	caps = announced(all)
	s.logger().Info("imap upstream capabilities before login", "capabilities", strings.Join(all, " "),
		"announced", strings.Join(caps, " "))
	return caps, true
}

// announced is the part of an upstream's pre-login list passgate repeats:
// each capability once (case-insensitively), none that passgate owns, and
// only valid atoms (a "]" would end the greeting's response code).
func announced(caps []string) []string {
	out := []string{}
	for _, c := range caps {
		if c == "" || ownedCapability(c) || strings.IndexFunc(c, func(r rune) bool { return r > 0x7f || !atomChar(byte(r)) }) >= 0 {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || strings.EqualFold(o, c)
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// ownedCapability reports whether c is decided by passgate's pre-login
// phase, whatever the upstream offers: TLS (STARTTLS, LOGINDISABLED), the
// login mechanisms (AUTH=, SASL-IR), the literal syntax it parses
// (LITERAL+, LITERAL-) and the commands it answers itself (ID), and the
// base protocol it speaks.
func ownedCapability(c string) bool {
	u := strings.ToUpper(c)
	switch u {
	case "IMAP4REV1", "STARTTLS", "LOGINDISABLED", "SASL-IR", "LITERAL+", "LITERAL-", "ID":
		return true
	}
	return strings.HasPrefix(u, "AUTH=")
}

// capabilities lists what the pre-auth phase announces (RFC 3501 §7.2.1):
// passgate's own, the upstream's (learnCapabilities), STARTTLS only on a
// plain connection with a TLS configuration (§6.2.1), and the AUTH=
// mechanisms, or LOGINDISABLED before TLS when cleartext logins are not
// allowed (§6.2.3).
func (c *conn) capabilities() string {
	upstream := defaultUpstreamCapabilities
	if p := c.srv.upstreamCaps.Load(); p != nil {
		upstream = *p
	}
	caps := append(append([]string{}, ownCapabilities...), upstream...)
	if !c.tls && c.srv.TLSConfig != nil {
		caps = append(caps, "STARTTLS")
	}
	if c.cleartextOK() {
		caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
	} else {
		caps = append(caps, "LOGINDISABLED")
	}
	return strings.Join(caps, " ")
}

// cleartextOK reports whether a login may be sent on this connection.
func (c *conn) cleartextOK() bool { return c.tls || c.srv.AllowCleartext }

// errPrivacyRequired refuses a login on a connection without TLS (RFC 5530
// PRIVACYREQUIRED, RFC 3501 §6.2.3).
var errPrivacyRequired = &respError{status: "NO", code: "PRIVACYREQUIRED", text: "TLS required: use STARTTLS"}

// cmdCapability answers CAPABILITY (RFC 3501 §6.1.1) with the list of the
// greeting.
func (c *conn) cmdCapability(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	return c.Write("* CAPABILITY "+c.capabilities(), cmd.tag+" OK CAPABILITY completed")
}

// cmdNoop answers NOOP (RFC 3501 §6.1.2).
func (c *conn) cmdNoop(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	return c.Write(cmd.tag + " OK NOOP completed")
}

// cmdLogout answers LOGOUT (RFC 3501 §6.1.3): BYE, tagged OK, close.
func (c *conn) cmdLogout(cmd *command) error {
	if err := cmd.end(); err != nil {
		return err
	}
	if err := c.Write("* BYE Logging out", cmd.tag+" OK LOGOUT completed"); err != nil {
		return err
	}
	return errDone
}
