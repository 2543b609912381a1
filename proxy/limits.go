package proxy

import "time"

// Defaults of Limits, the same for every front-end.
const (
	DefaultPreauthTimeout     = 60 * time.Second
	DefaultMaxFailedLogins    = 3
	DefaultMaxPreauthCommands = 100
	DefaultMaxLine            = 8192
	DefaultMaxLiteral         = 8192
)

// Limits bound what one client may cost a front-end before it logs in
// (config's [limits] keys). Each front-end's doc says how it enforces them;
// a zero field means its default.
type Limits struct {
	// PreauthTimeout bounds each exchange before login (a command with
	// its literals and SASL responses, a reply) and the TLS handshake: a
	// client idle that long before logging in is disconnected. If zero,
	// DefaultPreauthTimeout.
	PreauthTimeout time.Duration
	// MaxFailedLogins is the number of failed logins after which a
	// connection is closed; the Authenticator's rate-limit refusals count
	// too. If zero, DefaultMaxFailedLogins.
	MaxFailedLogins int
	// MaxPreauthCommands is the number of commands (SMTP: lines, SASL
	// responses included) a connection may send before it logs in; instead
	// of the next one the client is told why and disconnected. If zero,
	// DefaultMaxPreauthCommands.
	MaxPreauthCommands int
	// MaxLine is the longest command line before login, CRLF included
	// (IMAP; go-smtp bounds every SMTP line at 2000 bytes). If zero,
	// DefaultMaxLine.
	MaxLine int
	// MaxLiteral is the largest literal before login (IMAP). If zero,
	// DefaultMaxLiteral.
	MaxLiteral int
	// Conns bounds the connections open at once, in total and per source
	// address; a connection past a limit is refused before the greeting.
	// Servers given the same ConnLimiter share its counts. If nil, no
	// limit.
	Conns *ConnLimiter
}

// WithDefaults returns l with each zero field set to its default.
func (l Limits) WithDefaults() Limits {
	l.PreauthTimeout = orDefault(l.PreauthTimeout, DefaultPreauthTimeout)
	l.MaxFailedLogins = orDefault(l.MaxFailedLogins, DefaultMaxFailedLogins)
	l.MaxPreauthCommands = orDefault(l.MaxPreauthCommands, DefaultMaxPreauthCommands)
	l.MaxLine = orDefault(l.MaxLine, DefaultMaxLine)
	l.MaxLiteral = orDefault(l.MaxLiteral, DefaultMaxLiteral)
	return l
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
