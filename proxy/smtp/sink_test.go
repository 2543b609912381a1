package smtp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// sinkAuth is one AUTH the sink saw.
type sinkAuth struct {
	mech, identity, username, password string
}

// sinkMsg is one message the sink accepted (or, with discard, counted).
type sinkMsg struct {
	from  string
	opts  gosmtp.MailOptions
	rcpts []string
	rOpts []gosmtp.RcptOptions
	data  []byte
	size  int64
	hash  [32]byte
	tls   bool
}

// sink is the upstream submission server of the tests: a go-smtp server
// that requires AUTH with the upstream credentials and records everything.
type sink struct {
	addr string
	srv  *gosmtp.Server

	// Set before start.
	mechs      []string                     // AUTH mechanisms offered; nil = PLAIN, LOGIN
	rejectRcpt map[string]*gosmtp.SMTPError // RCPT replies
	dataErr    *gosmtp.SMTPError            // reply to the final dot
	dieAfter   int64                        // close the connection after this many body bytes (0 = never)
	discard    bool                         // hash and count bodies instead of keeping them (and keep no wire bytes)
	passwords  map[string]string            // authcid -> password accepted
	tlsMode    string                       // "", "starttls" or "tls"
	tlsConfig  *tls.Config
	noDSN      bool          // do not offer DSN
	noUTF8     bool          // do not offer SMTPUTF8
	onLogout   chan struct{} // if not nil, gets a value per session end

	accepts atomic.Int32
	conns   sync.Map // net.Conn -> struct{}

	tapMu sync.Mutex
	taps  []*tapConn // every accepted connection, in order

	mu      sync.Mutex
	auths   []sinkAuth
	msgs    []sinkMsg
	logouts int
}

// startSink starts a sink configured by cfg on 127.0.0.1:0.
func startSink(t testing.TB, cfg func(*sink)) *sink {
	t.Helper()
	s := &sink{passwords: map[string]string{
		masterUser:                 masterSecret,
		appUser + "*" + masterUser: masterSecret,
		appUser:                    appSecret,
	}}
	if cfg != nil {
		cfg(s)
	}
	if s.mechs == nil {
		s.mechs = []string{sasl.Plain, sasl.Login}
	}
	srv := gosmtp.NewServer(gosmtpBackend(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{s: s, c: c}, nil
	}))
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 100 << 20
	srv.EnableDSN = !s.noDSN
	srv.EnableSMTPUTF8 = !s.noUTF8
	// go-smtp sets the read deadline per command line only: a long DATA
	// must fit in it.
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = ioTimeout
	srv.ErrorLog = errorLog{slog.New(slog.DiscardHandler)}
	if s.tlsMode == "starttls" {
		srv.TLSConfig = s.tlsConfig
	}
	s.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var l net.Listener = &countingListener{Listener: ln, s: s}
	if s.tlsMode == "tls" {
		l = tls.NewListener(l, s.tlsConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		ln.Close() // ends Serve even if it had not started when Close ran
		<-done
	})
	return s
}

// killConns closes every upstream connection the sink has accepted.
func (s *sink) killConns() {
	s.conns.Range(func(k, _ any) bool {
		k.(net.Conn).Close()
		return true
	})
}

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

func (s *sink) authsSeen() []sinkAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkAuth(nil), s.auths...)
}

type countingListener struct {
	net.Listener
	s *sink
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.accepts.Add(1)
	tc := &tapConn{Conn: c, off: l.s.discard}
	l.s.conns.Store(net.Conn(tc), struct{}{})
	l.s.tapMu.Lock()
	l.s.taps = append(l.s.taps, tc)
	l.s.tapMu.Unlock()
	return tc, nil
}

// tapConn keeps every byte the sink read from an upstream connection: what
// passgate sent, exactly (ciphertext when the sink runs TLS). A sink that
// discards bodies keeps nothing: the memory tests measure passgate's heap,
// not a copy of the message in the tap.
type tapConn struct {
	net.Conn
	off bool
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.off {
		return n, err
	}
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// wire returns the bytes the sink received on each upstream connection so
// far (the probe's included), in the order they were accepted.
func (s *sink) wire() []string {
	s.tapMu.Lock()
	defer s.tapMu.Unlock()
	out := make([]string, len(s.taps))
	for i, c := range s.taps {
		c.mu.Lock()
		out[i] = c.got.String()
		c.mu.Unlock()
	}
	return out
}

type gosmtpBackend func(c *gosmtp.Conn) (gosmtp.Session, error)

func (f gosmtpBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) { return f(c) }

type sinkSession struct {
	s      *sink
	c      *gosmtp.Conn
	authed bool
	msg    sinkMsg
}

func (ss *sinkSession) AuthMechanisms() []string { return ss.s.mechs }

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	check := func(a sinkAuth) error {
		ss.s.mu.Lock()
		ss.s.auths = append(ss.s.auths, a)
		ss.s.mu.Unlock()
		if pw, ok := ss.s.passwords[a.username]; !ok || pw != a.password {
			return gosmtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			return check(sinkAuth{mech, identity, username, password})
		}), nil
	case sasl.Login:
		return newLoginServer(func(username, password string) error {
			return check(sinkAuth{mech, "", username, password})
		}), nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (ss *sinkSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if !ss.authed {
		return gosmtp.ErrAuthRequired
	}
	ss.msg = sinkMsg{from: from}
	if opts != nil {
		ss.msg.opts = *opts
	}
	return nil
}

func (ss *sinkSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if err := ss.s.rejectRcpt[to]; err != nil {
		return err
	}
	ss.msg.rcpts = append(ss.msg.rcpts, to)
	if opts != nil {
		ss.msg.rOpts = append(ss.msg.rOpts, *opts)
	}
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	m := ss.msg
	_, m.tls = ss.c.TLSConnectionState()
	if ss.s.dieAfter > 0 {
		io.CopyN(io.Discard, r, ss.s.dieAfter)
		ss.c.Conn().Close()
		return errors.New("sink died")
	}
	h := newHasher()
	var dst io.Writer = h
	var buf bytes.Buffer
	if !ss.s.discard {
		dst = io.MultiWriter(h, &buf)
	}
	n, err := io.Copy(dst, r)
	if err != nil {
		return err
	}
	if ss.s.dataErr != nil {
		return ss.s.dataErr
	}
	m.size, m.hash = n, h.sum()
	if !ss.s.discard {
		m.data = buf.Bytes()
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset() { ss.msg = sinkMsg{} }

func (ss *sinkSession) Logout() error {
	ss.s.mu.Lock()
	ss.s.logouts++
	ss.s.mu.Unlock()
	if ss.s.onLogout != nil {
		ss.s.onLogout <- struct{}{}
	}
	return nil
}

// waitAllUpstreamEnded waits until every connection the sink accepted has
// ended its session (sink.onLogout must be set).
func (s *sink) waitAllUpstreamEnded(t testing.TB) {
	t.Helper()
	timeout := time.After(ioTimeout)
	for {
		s.mu.Lock()
		done := s.logouts >= int(s.accepts.Load())
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-s.onLogout:
		case <-timeout:
			t.Fatal("upstream sessions did not end")
		}
	}
}
