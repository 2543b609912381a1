// Package demomail is the mail server that `passgate demo` runs in-process
// in place of a real one: an in-memory IMAP server (imapmemserver) and a
// submission server (go-smtp) that delivers into it, both on 127.0.0.1 and
// both accepting only the Dovecot-style master logins passgate sends.
package demomail

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	gosmtp "github.com/emersion/go-smtp"
)

// demoUpstream is the demo's mail server: imapmemserver behind a login that
// accepts Dovecot-style master logins ("user*master" + master secret), the
// way passgate's login-master mode logs in.
type demoUpstream struct {
	users        map[string]*imapmemserver.User
	master       string
	masterSecret string
}

type demoSession struct {
	*imapmemserver.UserSession
	up *demoUpstream
}

func (s *demoSession) Login(username, password string) error {
	user, master, ok := strings.Cut(username, "*")
	u := s.up.users[user]
	if !ok || u == nil || master != s.up.master ||
		subtle.ConstantTimeCompare([]byte(password), []byte(s.up.masterSecret)) != 1 {
		return imapserver.ErrAuthFailed
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	return nil
}

func (s *demoSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

// Server is the running demo mail server.
type Server struct {
	imap   *imapserver.Server
	imapLn net.Listener
	smtp   *gosmtp.Server
	smtpLn net.Listener
}

// names lists the demo's users.
func (up *demoUpstream) names() []string {
	out := make([]string, 0, len(up.users))
	for n := range up.users {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// IMAPAddr is the address of the IMAP listener.
func (d *Server) IMAPAddr() net.Addr { return d.imapLn.Addr() }

// SMTPAddr is the address of the submission listener.
func (d *Server) SMTPAddr() net.Addr { return d.smtpLn.Addr() }

// Close stops both servers.
func (d *Server) Close() error {
	return errors.Join(d.smtp.Close(), d.imap.Close())
}

// Start serves the demo's IMAP and submission servers on 127.0.0.1:0, for
// usernames, with a few messages in each INBOX. Both accept the master
// user master with secret (IMAP: LOGIN "user*master"; SMTP: AUTH PLAIN with
// authzid = user).
func Start(master, secret string, usernames []string) (*Server, error) {
	up, imapSrv, imapLn, err := startIMAP(master, secret, usernames)
	if err != nil {
		return nil, err
	}
	smtpSrv, smtpLn, err := startSubmission(up)
	if err != nil {
		imapSrv.Close()
		return nil, err
	}
	return &Server{imap: imapSrv, imapLn: imapLn, smtp: smtpSrv, smtpLn: smtpLn}, nil
}

// startIMAP serves an in-memory IMAP server on 127.0.0.1:0.
func startIMAP(master, secret string, usernames []string) (*demoUpstream, *imapserver.Server, net.Listener, error) {
	up := &demoUpstream{users: map[string]*imapmemserver.User{}, master: master, masterSecret: secret}
	for _, name := range usernames {
		u := imapmemserver.NewUser(name, "")
		for _, mbox := range []string{"INBOX", "Archive", "Sent"} {
			if err := u.Create(mbox, nil); err != nil {
				return nil, nil, nil, fmt.Errorf("demo upstream: %w", err)
			}
		}
		for i, subj := range []string{"Welcome to passgate", "Your app password works", "Try IDLE and MOVE"} {
			msg := demoMessage(name, subj, i)
			if _, err := u.Append("INBOX", literal{bytes.NewReader(msg), int64(len(msg))}, &goimap.AppendOptions{}); err != nil {
				return nil, nil, nil, fmt.Errorf("demo upstream: %w", err)
			}
		}
		up.users[name] = u
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &demoSession{up: up}, nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}, goimap.CapIMAP4rev2: {}},
		InsecureAuth: true, // loopback only, inside this process's demo
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("demo upstream: %w", err)
	}
	go srv.Serve(ln)
	return up, srv, ln, nil
}

func demoMessage(to, subject string, i int) []byte {
	date := time.Date(2026, 11, 27, 9, i, 0, 0, time.UTC).Format(time.RFC1123Z)
	return []byte(fmt.Sprintf("From: Passgate Demo <demo@example.org>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <demo-%d@example.org>\r\n\r\nThis message lives on the demo's upstream IMAP server.\r\n",
		to, subject, date, i))
}

// literal is the imap.LiteralReader that Append wants.
type literal struct {
	*bytes.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }
