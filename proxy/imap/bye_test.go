package imap

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sinkConn is a client connection that keeps what is written to it.
type sinkConn struct {
	net.Conn
	mu  sync.Mutex
	got strings.Builder
}

func (s *sinkConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }

func (s *sinkConn) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// TestByeOnlyBetweenResponses feeds byeConn upstream responses, whole and
// byte by byte, and checks that goodbye writes the BYE exactly when the
// stream is between two responses.
func TestByeOnlyBetweenResponses(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		safe   bool
	}{
		{"nothing relayed yet", "", true},
		{"one response", "* 1 EXISTS\r\n", true},
		{"two responses", "* 1 EXISTS\r\n* 1 RECENT\r\n", true},
		{"bare LF", "* 1 EXISTS\n", true},
		{"half a line", "* 1 EXIS", false},
		{"line without LF", "* 1 EXISTS\r", false},
		{"IDLE continuation", "+ idling\r\n", true},
		{"whole literal response", "* 1 FETCH (BODY[] {5}\r\nhello)\r\n", true},
		{"literal announced", "* 1 FETCH (BODY[] {5}\r\n", false},
		{"inside a literal", "* 1 FETCH (BODY[] {5}\r\nhel", false},
		{"literal done, line not", "* 1 FETCH (BODY[] {5}\r\nhello", false},
		{"literal holding CRLFs", "* 1 FETCH (BODY[] {8}\r\na\r\n\r\nb\r\n", false},
		{"literal holding CRLFs, then the end", "* 1 FETCH (BODY[] {8}\r\na\r\n\r\nb\r\n)\r\n", true},
		{"literal holding a literal announcement", "* 1 FETCH (BODY[] {8}\r\nx {99}\r\n)\r\n", true},
		{"two literals in one response", "* 1 FETCH (BODY[1] {2}\r\nab BODY[2] {3}\r\ncde)\r\n", true},
		{"second literal pending", "* 1 FETCH (BODY[1] {2}\r\nab BODY[2] {3}\r\ncd", false},
		{"empty literal", "* 1 FETCH (BODY[] {0}\r\n)\r\n", true},
		{"empty literal, line not done", "* 1 FETCH (BODY[] {0}\r\n", false},
		{"literal8 (RFC 3516)", "* 1 FETCH (BINARY[] ~{3}\r\nabc)\r\n", true},
		{"large literal announced", "* 1 FETCH (BODY[] {4294967295}\r\n", false},
		{"tagged OK after a fetch", "* 1 FETCH (BODY[] {1}\r\nx)\r\na1 OK done\r\n", true},
		// Human text that ends like a literal is taken for one; the next
		// line end puts the tracker right again.
		{"text ending in {5}", "a1 OK done {5}\r\n", false},
		{"text ending in {5}, then a response", "a1 OK done {5}\r\n* 1 EXISTS\r\n", true},
	}
	for _, tt := range tests {
		for _, byByte := range []bool{false, true} {
			name := tt.name
			if byByte {
				name += ", byte by byte"
			}
			t.Run(name, func(t *testing.T) {
				sink := &sinkConn{}
				bc := newByeConn(sink)
				chunks := []string{tt.stream}
				if byByte {
					chunks = strings.Split(tt.stream, "")
				}
				for _, ch := range chunks {
					if _, err := bc.Write([]byte(ch)); err != nil {
						t.Fatal(err)
					}
				}
				if got := bc.goodbye("* BYE x"); got != tt.safe {
					t.Fatalf("goodbye after %q = %v, want %v", tt.stream, got, tt.safe)
				}
				want := tt.stream
				if tt.safe {
					want += "* BYE x\r\n"
				}
				if got := sink.String(); got != want {
					t.Errorf("client got %q, want %q", got, want)
				}
				if _, err := bc.Write([]byte("* 2 EXISTS\r\n")); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Write after goodbye: %v, want net.ErrClosed", err)
				}
				if bc.goodbye("* BYE again") {
					t.Error("a second goodbye was written")
				}
			})
		}
	}
}

// blockingConn is a client connection whose Write blocks until release is
// closed, like a client that stopped reading.
type blockingConn struct {
	sinkConn
	writing chan struct{}
	release chan struct{}
}

func (b *blockingConn) Write(p []byte) (int, error) {
	close(b.writing)
	<-b.release
	return b.sinkConn.Write(p)
}

// TestByeNotDuringAWrite: a write blocked on a client that does not read
// gets no BYE after it; goodbye gives up.
func TestByeNotDuringAWrite(t *testing.T) {
	bc := newByeConn(&blockingConn{writing: make(chan struct{}), release: make(chan struct{})})
	b := bc.Conn.(*blockingConn)
	wrote := make(chan error, 1)
	go func() {
		_, err := bc.Write([]byte("* 1 EXISTS\r\n"))
		wrote <- err
	}()
	<-b.writing
	if bc.goodbye("* BYE x") {
		t.Error("goodbye was written while a write was blocked")
	}
	close(b.release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "* 1 EXISTS\r\n" {
		t.Errorf("client got %q", got)
	}
}

// TestShutdownMidLiteral: when the grace period ends while the upstream is
// in the middle of a literal, the client is not sent a BYE (it would be
// read as message data) but closed.
func TestShutdownMidLiteral(t *testing.T) {
	e := newEnv(t, cleartext)
	c, peer := e.loggedIn()
	c.expect("* 3 EXISTS")
	peer.send("* 1 FETCH (BODY[] {100}\r\nabc")
	c.expect("* 1 FETCH (BODY[] {100}")
	got := make([]byte, 3)
	c.conn.SetReadDeadline(deadline())
	if _, err := io.ReadFull(c.r, got); err != nil || string(got) != "abc" {
		t.Fatalf("read %q, %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v", err)
	}
	c.expectClosed()
	peer.expectClosed()
}
