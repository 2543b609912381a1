package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is the SMTP server Dovecot's submission service relays to
// (submission_relay_host/port): it runs in the test process, accepts every
// message and records its envelope and the exact bytes of its DATA (after
// dot-unstuffing, CRLFs kept). Tests share it and tell their messages apart
// by recipient: each test sends to addresses from uniqueRcpt, and takes only
// the messages addressed to them.
type smtpSink struct {
	Addr string

	srv     *smtp.Server
	mu      sync.Mutex
	msgs    []sinkMessage
	rcpts   []string            // every RCPT TO seen, accepted or not
	reject  map[string]struct{} // lower-case addresses refused at RCPT
	tooBig  map[string]struct{} // lower-case addresses whose messages are refused after DATA
	arrived chan struct{}       // closed and replaced on every new message
}

// sinkMessage is one message as the sink received it.
type sinkMessage struct {
	From string
	To   []string
	Data []byte
}

// sinkTooBigText is the text of the sink's 552 after DATA.
const sinkTooBigText = "Message too big for the test sink"

// sinkRejectText is the text of the sink's 550 to a refused recipient; a
// client of passgate must see it unchanged.
const sinkRejectText = "Mailbox unavailable at the test sink"

var rcptSeq atomic.Int64

// uniqueRcpt returns a recipient address no other test uses.
func uniqueRcpt(what string) string {
	return fmt.Sprintf("%s-%d@example.net", what, rcptSeq.Add(1))
}

var sharedSinkState struct {
	once sync.Once
	s    *smtpSink
	err  error
}

// sharedSink returns the shared Dovecot and the sink listening on its relay
// address, started on first use. It lives as long as the test process.
func sharedSink(t testing.TB) (*Dovecot, *smtpSink) {
	t.Helper()
	d := sharedDovecot(t)
	sharedSinkState.once.Do(func() {
		sharedSinkState.s, sharedSinkState.err = listenSink(d.RelayAddr)
	})
	if sharedSinkState.err != nil {
		t.Fatalf("smtp sink: %v", sharedSinkState.err)
	}
	return d, sharedSinkState.s
}

// startSink starts a sink of the test's own on address (the RelayAddr of a
// Dovecot from startDovecot), closed when the test ends.
func startSink(t testing.TB, address string) *smtpSink {
	t.Helper()
	s, err := listenSink(address)
	if err != nil {
		t.Fatalf("smtp sink: %v", err)
	}
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func listenSink(address string) (*smtpSink, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", address, err)
	}
	s := &smtpSink{Addr: ln.Addr().String(), reject: map[string]struct{}{}, tooBig: map[string]struct{}{}, arrived: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: s}, nil
	}))
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 256 << 20
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = discardLogger{}
	s.srv = srv
	go srv.Serve(ln)
	return s, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// rejectRcpt makes the sink answer RCPT TO:<address> with 550 5.1.1.
func (s *smtpSink) rejectRcpt(address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject[strings.ToLower(address)] = struct{}{}
}

// refuseMessagesTo makes the sink accept RCPT TO:<address> but answer the
// end of DATA with 552 5.3.4, as a server whose size limit the message
// exceeded.
func (s *smtpSink) refuseMessagesTo(address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tooBig[strings.ToLower(address)] = struct{}{}
}

// take waits until a message addressed to rcpt arrives, removes it from the
// sink and returns it. It fails the test after 30 s.
func (s *smtpSink) take(t testing.TB, rcpt string) sinkMessage {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		m, ok, arrived := s.takeNow(rcpt)
		if ok {
			return m
		}
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("the sink got no message for %s within 30 s", rcpt)
		}
	}
}

func (s *smtpSink) takeNow(rcpt string) (sinkMessage, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.msgs {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				s.msgs = append(s.msgs[:i], s.msgs[i+1:]...)
				return m, true, nil
			}
		}
	}
	return sinkMessage{}, false, s.arrived
}

// count returns how many messages addressed to rcpt the sink holds.
func (s *smtpSink) count(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				n++
			}
		}
	}
	return n
}

// sawRcpt reports whether any RCPT TO named address (accepted or refused).
func (s *smtpSink) sawRcpt(address string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rcpts {
		if strings.EqualFold(r, address) {
			return true
		}
	}
	return false
}

// sinkSession records one transaction at a time.
type sinkSession struct {
	sink *smtpSink
	msg  sinkMessage
}

func (ss *sinkSession) Reset()        { ss.msg = sinkMessage{} }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.msg = sinkMessage{From: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.sink
	s.mu.Lock()
	s.rcpts = append(s.rcpts, to)
	_, refused := s.reject[strings.ToLower(to)]
	s.mu.Unlock()
	if refused {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: sinkRejectText}
	}
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			return err
		}
		return fmt.Errorf("sink read DATA: %w", err)
	}
	m := ss.msg
	m.Data = buf.Bytes()
	s := ss.sink
	s.mu.Lock()
	for _, to := range m.To {
		if _, ok := s.tooBig[strings.ToLower(to)]; ok {
			s.mu.Unlock()
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: sinkTooBigText}
		}
	}
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.mu.Unlock()
	return nil
}
