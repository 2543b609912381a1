// Package notify tells an account's owner what happened to their
// credentials: an app password created, first used (with the client and
// network it was bound to), used or refused from another device, unused
// and about to be removed or removed; their two-step verification reset
// or all their app passwords revoked by an administrator (issue 16).
//
// It reads the audit stream: a Notifier is the authn.Auditor's (and
// account.Service's) Notify hook, which hands it every record without
// blocking. Records that notify (Notifies) wait in a bounded queue; one
// goroutine renders each in the owner's language (render.go: embedded
// text/template and html/template files, English and French) and
// delivers it by mail through the submission upstream that passgate
// relays to (mail.go, mime.go), and to an operator's webhook (webhook.go:
// JSON, HMAC-SHA256 signed, retried with backoff).
//
//	n := &notify.Notifier{Accounts: st, Counters: counters,
//		Mail:    &notify.Mail{Upstream: upstreamConfig.SMTP(), From: "passgate@example.org"},
//		Address: smtp.AliasesOf(st).Primary("example.org")}
//	n.Start()
//	defer n.Close(ctx)
//	auditor.Notify, accounts.Notify = n, n
//
// Implementation notes:
//   - A login never waits for a notification: Notify only queues, and a
//     full queue drops the record with a warning and a metric (the audit
//     record itself is already kept; the notification is the only loss).
//   - Rate limits (limit.go) keep an attacker from flooding a mailbox: at
//     most MaxPerHour per account for device events and as many for
//     account changes (so that a flood of logins from new devices cannot
//     hide a change), and drift or refusals of one password from one
//     device told once per CollapseWindow, counted in store.Counters so
//     that every instance shares them. What is not sent is logged and
//     counted with its reason.
//   - What an attacker controls (a password's name, a client's ID) is
//     escaped in the HTML part and cannot break the Subject line.
package notify
