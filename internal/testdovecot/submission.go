package testdovecot

import (
	"fmt"
	"net"
	"strconv"
)

// WithSubmission adds Dovecot's submission service (RFC 6409, STARTTLS on
// Server.SubmitAddr) relaying every message to relayAddr, an SMTP server
// the test runs on 127.0.0.1. It takes the logins IMAP takes, OAuth
// included when WithOAuth is given too.
func WithSubmission(relayAddr string) Option {
	return func(opts *options) { opts.relayAddr = relayAddr }
}

// relay splits the relay address; both are empty without WithSubmission.
func (o options) relay() (host string, port int, err error) {
	if o.relayAddr == "" {
		return "", 0, nil
	}
	host, p, err := net.SplitHostPort(o.relayAddr)
	if err == nil {
		port, err = strconv.Atoi(p)
	}
	if err != nil || host == "" || port == 0 {
		return "", 0, fmt.Errorf("submission relay address %q: want host:port", o.relayAddr)
	}
	return host, port, nil
}
