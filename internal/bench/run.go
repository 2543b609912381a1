package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"time"
)

// sample is one measurement of one target in one repetition.
type sample struct {
	values  []float64 // one per row of the measurement
	work    float64   // what the CPU row divides by (thousands of logins, GiB); 0 = no CPU row
	note    string    // progress line
	warning string    // something the report must show next to the figure
}

// measurement is one kind of load and the rows it fills.
type measurement struct {
	name   string
	rows   []int // value rows, in the order of sample.values
	cpuRow int   // -1: none
	// idle measurements run in the first repetition only (a later
	// "before" sample would count memory freed by the first), target by
	// target, the TLS sessions opened while the plain ones are still held.
	idle    bool
	tls     bool
	needPID bool
	addr    func(Target) string
	run     func(r *runner, ctx context.Context, t Target, addr string, tlsConf *tls.Config) (sample, error)
}

func imapAddr(t Target) string  { return t.IMAP }
func imapsAddr(t Target) string { return t.IMAPS }
func smtpAddr(t Target) string  { return t.SMTP }

var allMeasurements = []measurement{
	{name: Idle, rows: []int{rowIdlePSS, rowIdleRSS}, cpuRow: -1, idle: true, needPID: true, addr: imapAddr, run: (*runner).idle},
	{name: IdleTLS, rows: []int{rowIdleTLSPSS, rowIdleTLSRSS}, cpuRow: -1, idle: true, tls: true, needPID: true, addr: imapsAddr, run: (*runner).idle},
	{name: Login, rows: []int{rowLogin}, cpuRow: rowCPULogin, addr: imapAddr, run: (*runner).login},
	{name: LoginTLS, rows: []int{rowLoginTLS}, cpuRow: rowCPULoginTLS, tls: true, addr: imapsAddr, run: (*runner).login},
	{name: Fetch, rows: []int{rowFetch}, cpuRow: rowCPUFetch, addr: imapAddr, run: (*runner).fetch},
	{name: FetchTLS, rows: []int{rowFetchTLS}, cpuRow: rowCPUFetchTLS, tls: true, addr: imapsAddr, run: (*runner).fetch},
	{name: SMTP, rows: []int{rowSMTP}, cpuRow: rowCPUSMTP, addr: smtpAddr, run: (*runner).smtp},
}

// runner holds what one Run shares between its measurements.
type runner struct {
	cfg  Config
	tls  map[string]*tls.Config // per address, so that a session cache is per target
	data map[string][]byte      // SMTP DATA per sender and recipient
	held []*imapConn            // idle sessions of the current target
}

// Run measures every target as cfg says and returns the report. The error
// is for a config that cannot run, or a cancelled context (the report then
// holds what was measured); a failed measurement is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &runner{cfg: cfg, tls: map[string]*tls.Config{}, data: map[string][]byte{}}
	var ms []measurement
	for _, m := range allMeasurements {
		if slices.Contains(cfg.Measurements, m.name) {
			ms = append(ms, m)
		}
	}
	rep := newReport(cfg)
	defer rep.finish()
	r.warmUp(ctx, ms, rep)
	if slices.ContainsFunc(ms, func(m measurement) bool { return m.idle }) {
		// The "before" sample of memory must not count the warm-up's
		// garbage: a passgate returns it a second after its last login
		// (and its first login's argon2id is 19 MiB).
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
		}
	}
	for _, t := range cfg.Targets {
		for _, m := range ms {
			if m.idle && m.applies(t) && ctx.Err() == nil {
				r.runOne(ctx, rep, m, t, 0)
			}
		}
		r.release()
	}
	for i := range cfg.Reps {
		for _, m := range ms {
			for _, t := range cfg.Targets {
				if m.idle || !m.applies(t) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return rep, fmt.Errorf("bench: %w", err)
				}
				r.runOne(ctx, rep, m, t, i)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	return rep, nil
}

// applies reports whether t has what m needs.
func (m measurement) applies(t Target) bool {
	return m.addr(t) != "" && (!m.needPID || t.PID != 0)
}

// runOne runs m against t once and records the figures, with the CPU of
// t's process tree when t has a PID.
func (r *runner) runOne(ctx context.Context, rep *Report, m measurement, t Target, i int) {
	addr := m.addr(t)
	where := fmt.Sprintf("%s %s rep %d", m.name, t.Name, i+1)
	load := rep.sampleLoad()
	var tlsConf *tls.Config
	if m.tls {
		tlsConf = r.tlsFor(addr)
	}
	cpuOK := t.PID != 0 && m.cpuRow >= 0
	var cpu0 float64
	if cpuOK {
		var err error
		if cpu0, err = cpuSeconds(t.PID); err != nil {
			rep.warn("%s: no CPU figure: %v", where, err)
			cpuOK = false
		}
	}
	s, err := m.run(r, ctx, t, addr, tlsConf)
	if err != nil {
		rep.fail(m.rows, t.Name, "%s: %v", where, err)
		fmt.Fprintf(r.cfg.Log, "%s: FAILED: %v\n", where, err)
		return
	}
	for j, row := range m.rows {
		rep.set(row, t.Name, i, s.values[j])
	}
	if cpuOK && s.work > 0 {
		if cpu1, err := cpuSeconds(t.PID); err == nil {
			rep.set(m.cpuRow, t.Name, i, (cpu1-cpu0)/s.work)
			s.note += fmt.Sprintf("; CPU %.2fs", cpu1-cpu0)
		}
	}
	if s.warning != "" {
		rep.warn("%s: %s", where, s.warning)
	}
	fmt.Fprintf(r.cfg.Log, "%s: %s; load %.2f\n", where, s.note, load)
}

// tlsFor returns the client config for addr: Config.TLS with the host as
// ServerName if it has none.
func (r *runner) tlsFor(addr string) *tls.Config {
	if c, ok := r.tls[addr]; ok {
		return c
	}
	c := r.cfg.TLS.Clone()
	if c.ClientSessionCache != nil {
		// One cache per target: a ticket is only ever offered back to
		// the server that issued it.
		c.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(addr)
	}
	r.tls[addr] = c
	return c
}

// warmUp logs in once on every address the selected measurements use, so
// that the runs measure warm logins (passgate's verified-login cache
// filled), and puts the FETCH message in place.
func (r *runner) warmUp(ctx context.Context, ms []measurement, rep *Report) {
	uses := map[string]bool{}
	for _, m := range ms {
		uses[m.name] = true
	}
	imap := uses[Login] || uses[Idle] || uses[Fetch]
	imaps := uses[LoginTLS] || uses[IdleTLS] || uses[FetchTLS]
	fetchReady := false
	for _, t := range r.cfg.Targets {
		warm := func(what string, err error) {
			if err != nil {
				rep.warn("warm-up %s %s: %v", what, t.Name, err)
				fmt.Fprintf(r.cfg.Log, "warm-up %s %s: FAILED: %v\n", what, t.Name, err)
			}
		}
		if imap && t.IMAP != "" {
			warm("imap", r.loginOnce(ctx, t, t.IMAP, nil))
		}
		if imaps && t.IMAPS != "" {
			warm("imaps", r.loginOnce(ctx, t, t.IMAPS, r.tlsFor(t.IMAPS)))
		}
		if uses[SMTP] && t.SMTP != "" {
			msg := dataOf(message(1024, r.cfg.sender(t), r.cfg.recipient(t)))
			warm("smtp", submit(ctx, t.SMTP, nil, r.cfg.IOTimeout, t.User, t.Secret, r.cfg.sender(t), r.cfg.recipient(t), msg))
		}
		if (uses[Fetch] || uses[FetchTLS]) && !fetchReady {
			addr, tlsConf := t.IMAP, (*tls.Config)(nil)
			if addr == "" && t.IMAPS != "" {
				addr, tlsConf = t.IMAPS, r.tlsFor(t.IMAPS)
			}
			if addr != "" {
				err := r.prepareFetch(ctx, t, addr, tlsConf)
				warm("fetch message", err)
				fetchReady = err == nil
			}
		}
	}
}

// loginOnce logs in and out once.
func (r *runner) loginOnce(ctx context.Context, t Target, addr string, tlsConf *tls.Config) error {
	cmd, err := loginCommand(t.User, t.Secret)
	if err != nil {
		return err
	}
	c := newIMAPConn(4096, r.cfg.IOTimeout)
	if err := c.login(ctx, addr, tlsConf, cmd); err != nil {
		return err
	}
	return c.logout()
}
