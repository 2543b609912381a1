// Package integration runs passgate end to end against a real Dovecot and real
// mail clients.
//
// Everything lives in the tests: TestMain builds the passgate binary once and
// the tests share one private Dovecot instance (started on first use under a
// temporary directory, with its own ports on 127.0.0.1). The clients are the
// real ones a user runs: curl, Debian's /usr/bin/python3 imaplib and
// go-imap's imapclient.
//
// Missing components (dovecot, curl, python3) skip the tests, except when
// CI=true, where they fail the run: a CI machine must have installed them
// (see .ci/run).
package integration
