package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// memUpstream runs go-imap's in-memory server on 127.0.0.1:0 with user
// alice (password userPassword) and an INBOX.
func memUpstream(t *testing.T) string {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", userPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func TestPassthroughMemServer(t *testing.T) {
	addr := memUpstream(t)
	u := &IMAP{Address: addr, Mode: ModePassthrough, SendID: true}
	c, err := doLogin(t, u, alice)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !strings.Contains(c.Capability, "IMAP4rev1") || !strings.Contains(c.Capability, "IDLE") {
		t.Errorf("Capability = %q, want the post-login list", c.Capability)
	}

	// The handed-over connection is in the authenticated state.
	c.SetDeadline(time.Now().Add(scriptDeadline))
	if _, err := c.Write([]byte("a1 SELECT INBOX\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(io.MultiReader(strings.NewReader(string(c.Buffered)), c))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("SELECT: %v", err)
		}
		if strings.HasPrefix(line, "a1 ") {
			if !strings.HasPrefix(line, "a1 OK") {
				t.Fatalf("SELECT INBOX = %q", line)
			}
			break
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		bad := alice
		bad.Password = "wrong"
		_, err := doLogin(t, u, bad)
		var refused *RefusedError
		if !errors.As(err, &refused) {
			t.Fatalf("Login = %v, want *RefusedError", err)
		}
	})
	t.Run("check", func(t *testing.T) {
		if err := u.Check(context.Background()); err != nil {
			t.Fatalf("Check = %v", err)
		}
	})
}
