// Package bench measures passgate against its peers: the same load runs
// against several targets (Dovecot straight, nginx's mail proxy, passgate)
// in one run, and the figures come out as one Markdown table with ratios
// against a baseline target. It is the code of `passgate bench`.
//
// The measurements (each a row, best of Reps repetitions with the spread):
//
//   - login, login-tls: warm logins/s, C clients each looping connect,
//     greeting, LOGIN, LOGOUT, close; plain or implicit-TLS client legs.
//   - fetch, fetch-tls: UID FETCH BODY[] of one large message, MB/s.
//   - idle, idle-tls: K logged-in idle sessions; memory per session of the
//     target's process tree (PSS and RSS from /proc/PID/smaps_rollup).
//   - smtp: one large message per SMTP submission session, MB/s.
//   - CPU of the target's process tree (from /proc/PID/stat) per 1000
//     logins and per GiB relayed, next to the rows above.
//
// The load loops speak IMAP and SMTP by hand over net.Conn (no goroutine
// per connection, buffers reused) so that the client is not what limits
// the figures.
package bench

// Implementation notes (invariants every change must keep):
//
//   - Loopback only: Config.check refuses a target address that is not a
//     loopback IP or "localhost" unless AllowNonLoopback is set.
//   - Bounded: every measurement is bounded in count (MaxLogins, Fetches,
//     Sessions, SMTPMessages) and in time (Duration, IOTimeout on every
//     read and write, the caller's context), and every connection it opens
//     is closed before it returns.
//   - Secrets never appear in progress lines, errors or the report: replies
//     are quoted, commands never.
