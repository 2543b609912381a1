package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Target is one server the load runs against: a column of the table.
type Target struct {
	Name  string
	IMAP  string // host:port of plain IMAP; "" = no plain IMAP rows
	IMAPS string // host:port of implicit-TLS IMAP; "" = no TLS rows
	SMTP  string // host:port of SMTP submission (AUTH PLAIN without TLS); "" = no SMTP row
	User  string
	// Secret is the password or app password of User; it is sent only to
	// this target and never printed.
	Secret string
	// PID is the process whose tree (it and its descendants) is sampled
	// for memory and CPU; 0 = no idle and CPU rows for this target.
	PID int
}

// Measurement names, in the order they run within a repetition: idle
// first, so that its "before" sample is of a process that has not yet
// served the other loads.
const (
	Idle     = "idle"
	IdleTLS  = "idle-tls"
	Login    = "login"
	LoginTLS = "login-tls"
	Fetch    = "fetch"
	FetchTLS = "fetch-tls"
	SMTP     = "smtp"
)

// Measurements lists every measurement, in running order.
var Measurements = []string{Idle, IdleTLS, Login, LoginTLS, Fetch, FetchTLS, SMTP}

// Config is one bench run. Zero values mean the defaults in brackets.
type Config struct {
	Targets []Target
	// Baselines are the names of the targets that ratios are taken
	// against [the first target].
	Baselines []string
	// Measurements to run [all of Measurements]; each runs on the targets
	// that have what it needs.
	Measurements []string

	Reps        int           // repetitions; each row is the best of them [3]
	Concurrency int           // login: clients at once [8]
	Duration    time.Duration // login: length of one run [10s]
	MaxLogins   int           // login: cap on logins in one run [1,000,000]

	FetchSize int // fetch: message size in bytes [10 MiB]
	Fetches   int // fetch: UID FETCH BODY[] per run [20]

	Sessions        int           // idle: K sessions held [1000]
	OpenConcurrency int           // idle: logins at once while opening [32]
	Settle          time.Duration // idle: wait before the "after" sample [2s]

	SMTPSize     int    // smtp: message size in bytes [10 MiB]
	SMTPMessages int    // smtp: messages (one session each) per run [1]
	MailFrom     string // smtp: envelope sender [the target's user, "@localhost" added if it has no "@"]
	RcptTo       string // smtp: recipient [MailFrom]

	IOTimeout time.Duration // deadline of each command and reply [30s]
	// TLS is the client config of TLS legs [no certificate verification:
	// the figures, not the peer, are what is checked, on loopback].
	TLS              *tls.Config
	AllowNonLoopback bool      // allow targets outside 127.0.0.0/8, ::1 and localhost
	Log              io.Writer // progress lines [none]
}

// Bounds on the counts, so that a typo cannot start an unbounded load.
const (
	maxReps        = 20
	maxConcurrency = 1024
	maxDuration    = 10 * time.Minute
	maxSize        = 1 << 30
	maxFetches     = 10000
	maxSessions    = 50000
	maxMessages    = 1000
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Reps, 3)
	def(&c.Concurrency, 8)
	def(&c.MaxLogins, 1_000_000)
	def(&c.FetchSize, 10<<20)
	def(&c.Fetches, 20)
	def(&c.Sessions, 1000)
	def(&c.OpenConcurrency, 32)
	def(&c.SMTPSize, 10<<20)
	def(&c.SMTPMessages, 1)
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Second
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = 30 * time.Second
	}
	if len(c.Baselines) == 0 && len(c.Targets) > 0 {
		c.Baselines = []string{c.Targets[0].Name}
	}
	if len(c.Measurements) == 0 {
		c.Measurements = Measurements
	}
	if c.TLS == nil {
		c.TLS = &tls.Config{InsecureSkipVerify: true}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// check validates a config with defaults applied; every error names the
// field (and never a secret).
func (c Config) check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Targets) == 0 {
		bad("no target")
	}
	names := map[string]bool{}
	for _, t := range c.Targets {
		switch {
		case t.Name == "" || strings.ContainsAny(t.Name, "|=, \t"):
			bad("target name %q: must be non-empty, without '|', '=', ',' or spaces", t.Name)
		case names[t.Name]:
			bad("target %s: named twice", t.Name)
		}
		names[t.Name] = true
		if t.IMAP == "" && t.IMAPS == "" && t.SMTP == "" {
			bad("target %s: no address", t.Name)
		}
		if t.User == "" {
			bad("target %s: no user", t.Name)
		}
		if t.Secret == "" {
			bad("target %s: no secret", t.Name)
		}
		if t.PID < 0 {
			bad("target %s: pid %d", t.Name, t.PID)
		}
		for _, a := range []struct{ what, addr string }{{"imap", t.IMAP}, {"imaps", t.IMAPS}, {"smtp", t.SMTP}} {
			if a.addr == "" {
				continue
			}
			if err := checkAddr(a.addr, c.AllowNonLoopback); err != nil {
				bad("target %s %s address: %v", t.Name, a.what, err)
			}
		}
	}
	for _, b := range c.Baselines {
		if !names[b] {
			bad("baseline %q: no such target", b)
		}
	}
	for _, m := range c.Measurements {
		if !slices.Contains(Measurements, m) {
			bad("measurement %q: not one of %s", m, strings.Join(Measurements, ", "))
		}
	}
	counts := []struct {
		name     string
		v, limit int
	}{
		{"reps", c.Reps, maxReps}, {"concurrency", c.Concurrency, maxConcurrency},
		{"max logins", c.MaxLogins, 1 << 30}, {"fetch size", c.FetchSize, maxSize},
		{"fetches", c.Fetches, maxFetches}, {"sessions", c.Sessions, maxSessions},
		{"open concurrency", c.OpenConcurrency, maxConcurrency}, {"smtp size", c.SMTPSize, maxSize},
		{"smtp messages", c.SMTPMessages, maxMessages},
	}
	for _, n := range counts {
		if n.v < 1 || n.v > n.limit {
			bad("%s %d: must be 1 to %d", n.name, n.v, n.limit)
		}
	}
	if c.FetchSize < 512 || c.SMTPSize < 512 {
		bad("message sizes must be at least 512 bytes")
	}
	if c.Duration < 0 || c.Duration > maxDuration {
		bad("duration %v: must be at most %v", c.Duration, maxDuration)
	}
	if c.Settle < 0 || c.IOTimeout < 0 {
		bad("settle and io timeout must not be negative")
	}
	return errors.Join(errs...)
}

// checkAddr accepts host:port whose host is a loopback IP or "localhost",
// or any host when remote is allowed.
func checkAddr(addr string, remote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if remote || host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address (127.0.0.0/8, ::1, localhost)", host)
	}
	return nil
}

// sender and recipient of SMTP runs for t.
func (c Config) sender(t Target) string {
	if c.MailFrom != "" {
		return c.MailFrom
	}
	if strings.Contains(t.User, "@") {
		return t.User
	}
	return t.User + "@localhost"
}

func (c Config) recipient(t Target) string {
	if c.RcptTo != "" {
		return c.RcptTo
	}
	return c.sender(t)
}
