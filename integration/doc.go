// Package integration runs passgate end to end against real peers and real
// mail clients.
//
// Everything lives in the tests: TestMain builds the passgate binary once and
// the tests share one private Dovecot instance (started on first use under a
// temporary directory, with its own ports on 127.0.0.1); tests that need
// them start their own redis-server and Postfix the same way. The clients are
// the real ones a user runs: curl, swaks, Debian's /usr/bin/python3 (imaplib,
// smtplib), go-imap's imapclient, and headless Chromium for the portal.
//
// Missing components skip the tests that need them, except when CI=true,
// where they fail the run: a CI machine must have installed them (see
// .ci/run).
package integration
