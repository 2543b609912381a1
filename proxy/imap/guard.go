package imap

// errRateLimited answers an attempt the authn.Guard refused before
// verifying it. Dovecot answers such attempts AUTHENTICATIONFAILED after
// its penalty delay; mox refuses the connection with "BYE too many auth
// failures". passgate says what happened with [UNAVAILABLE] (RFC 5530
// §3: a temporary failure), so that a blocked owner's client reports "try
// again later" instead of prompting for a password that is right. It tells
// an attacker nothing about the secret (none was checked) nor about the
// account: unknown accounts are counted and refused alike.
var errRateLimited = &respError{status: "NO", code: "UNAVAILABLE",
	text: "Too many failed logins, try again later", failure: true}
