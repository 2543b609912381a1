package portal

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testlog"
	"github.com/passgate/passgate/proxy/imap"
	"github.com/passgate/passgate/proxy/sessions"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/memcount"
)

// mailStack is passgate as `serve` runs it, in one process: a bolt store,
// the Guard, the IMAP proxy with its live-session registry fed by the
// store's events, an in-memory upstream IMAP server (login-master, as
// Dovecot master users), and the portal on a real listener.
type mailStack struct {
	db       *bolt.DB
	v        *authn.Verifier
	portal   *httptest.Server
	imapAddr string
	log      *testlog.Buffer
}

const (
	upstreamMaster = "passgate-master"
	upstreamSecret = "upstream master secret"
)

func newMailStack(t *testing.T, users []string) *mailStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log, logs := testlog.New(slog.LevelDebug)

	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v := &authn.Verifier{Store: db, Params: testParams, Logger: log}
	guard := &authn.Guard{Verifier: v, Counters: &memcount.Counters{}, Audit: &authn.Auditor{Store: db, Log: log},
		Sleep: func(context.Context, time.Duration) error { return nil }, Logger: log}

	reg := &sessions.Registry{Store: db, Logger: log}
	if _, err := reg.Watch(ctx); err != nil {
		t.Fatal(err)
	}

	upAddr := startUpstream(t, users)
	srv := &imap.Server{
		Auth: guard,
		Upstream: &upstream.IMAP{Address: upAddr, Mode: upstream.ModeLoginMaster, MasterUser: upstreamMaster,
			MasterSecret: upstreamSecret, Separator: "*", Logger: log},
		Sessions:       reg,
		AllowCleartext: true, // loopback test: no certificate
		Logger:         log,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	st := &mailStack{db: db, v: v, imapAddr: ln.Addr().String(), log: logs}
	st.portal = httptest.NewUnstartedServer(nil)
	p := &Server{Store: db, Auth: guard, Verifier: v, Key: testKey, BaseURL: "http://" + st.portal.Listener.Addr().String(),
		Mail: MailSettings{IMAPHost: "mail.example.org"}, Logger: log}
	st.portal.Config.Handler = p.Handler()
	st.portal.Start()
	t.Cleanup(st.portal.Close)
	return st
}

// upstreamSession is an imapmemserver session behind a Dovecot-style
// master login: "user*master" with the master secret.
type upstreamSession struct {
	*imapmemserver.UserSession
	users map[string]*imapmemserver.User
}

func (s *upstreamSession) Login(username, password string) error {
	user, master, ok := strings.Cut(username, "*")
	u := s.users[user]
	if !ok || u == nil || master != upstreamMaster ||
		subtle.ConstantTimeCompare([]byte(password), []byte(upstreamSecret)) != 1 {
		return imapserver.ErrAuthFailed
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	return nil
}

func (s *upstreamSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

// startUpstream serves users, each with one message in INBOX, on
// 127.0.0.1:0 and returns the address.
func startUpstream(t *testing.T, usernames []string) string {
	t.Helper()
	users := map[string]*imapmemserver.User{}
	for _, name := range usernames {
		u := imapmemserver.NewUser(name, "")
		if err := u.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		msg := []byte(fmt.Sprintf("From: <portal-test@example.org>\r\nTo: <%s>\r\nSubject: hello\r\n\r\nhi\r\n", name))
		if _, err := u.Append("INBOX", literalReader{bytes.NewReader(msg), int64(len(msg))}, &goimap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &upstreamSession{users: users}, nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: true, // loopback, inside the test
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type literalReader struct {
	*bytes.Reader
	n int64
}

func (l literalReader) Size() int64 { return l.n }
