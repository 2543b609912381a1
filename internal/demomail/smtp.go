package demomail

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// The demo's submission server: go-smtp accepting the master login passgate
// sends in "master" mode (SASL PLAIN, authzid = user, authcid = master), and
// delivering each message into the recipient's INBOX on the demo IMAP
// server, so that mail sent through passgate can be read through passgate.

const demoMaxMessage = 10 << 20

type demoSMTPSession struct {
	up       *demoUpstream
	user     string
	from     string
	rcpts    []string
	loggedIn bool
}

func (s *demoSMTPSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *demoSMTPSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.up.master || s.up.users[identity] == nil ||
			subtle.ConstantTimeCompare([]byte(password), []byte(s.up.masterSecret)) != 1 {
			return gosmtp.ErrAuthFailed
		}
		s.user, s.loggedIn = identity, true
		return nil
	}), nil
}

func (s *demoSMTPSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if !s.loggedIn {
		return gosmtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *demoSMTPSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.up.users[strings.ToLower(to)] == nil {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
			Message: "No such user here (the demo knows " + strings.Join(s.up.names(), ", ") + ")"}
	}
	s.rcpts = append(s.rcpts, strings.ToLower(to))
	return nil
}

func (s *demoSMTPSession) Data(r io.Reader) error {
	body, err := io.ReadAll(io.LimitReader(r, demoMaxMessage+1))
	if err != nil {
		return err
	}
	if len(body) > demoMaxMessage {
		return &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message too big for the demo"}
	}
	received := fmt.Sprintf("Received: from passgate by demo-upstream for <%s>; %s\r\n",
		strings.Join(s.rcpts, ">, <"), time.Now().Format(time.RFC1123Z))
	msg := append([]byte(received), body...)
	for _, to := range s.rcpts {
		_, err := s.up.users[to].Append("INBOX", literal{bytes.NewReader(msg), int64(len(msg))}, &goimap.AppendOptions{})
		if err != nil {
			return fmt.Errorf("demo delivery: %w", err)
		}
	}
	return nil
}

func (s *demoSMTPSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *demoSMTPSession) Logout() error { return nil }

// startSubmission serves the demo's submission server on 127.0.0.1:0.
func startSubmission(up *demoUpstream) (*gosmtp.Server, net.Listener, error) {
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &demoSMTPSession{up: up}, nil
	}))
	srv.Domain = "demo-upstream"
	srv.AllowInsecureAuth = true // loopback only, inside this process's demo
	srv.MaxMessageBytes = demoMaxMessage
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo submission: %w", err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			fmt.Println("demo submission:", err)
		}
	}()
	return srv, ln, nil
}
