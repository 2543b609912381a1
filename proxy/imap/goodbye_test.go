package imap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// sinkConn is an upstream connection that keeps what is written to it.
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

func (s *sinkConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }

func (s *sinkConn) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// TestLogoutOnlyBetweenCommands feeds upstreamConn the client's commands,
// whole and byte by byte, and checks that logout sends LOGOUT upstream
// exactly when the client is between two commands, ending IDLE first.
func TestLogoutOnlyBetweenCommands(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		safe   bool
		idle   bool // DONE goes before the LOGOUT
	}{
		{"nothing relayed yet", "", true, false},
		{"one command", "b NOOP\r\n", true, false},
		{"bare LF", "b NOOP\n", true, false},
		{"half a line", "b NOO", false, false},
		{"line without LF", "b NOOP\r", false, false},
		{"IDLE", "b SELECT INBOX\r\nc IDLE\r\n", true, true},
		{"idle, lower case", "c idle\r\n", true, true},
		{"IDLE ended by DONE", "c IDLE\r\nDONE\r\n", true, false},
		{"IDLE as an argument", "c SELECT IDLE\r\n", true, false},
		{"literal announced", "c APPEND INBOX {5}\r\n", false, false},
		{"inside a literal", "c APPEND INBOX {5}\r\nhel", false, false},
		{"literal done, line not", "c APPEND INBOX {5}\r\nhello", false, false},
		{"whole APPEND", "c APPEND INBOX {5}\r\nhello\r\n", true, false},
		{"APPEND whose message says IDLE", "c APPEND INBOX {8}\r\nd IDLE\r\n\r\n", true, false},
		{"non-synchronising literal", "c APPEND INBOX {3+}\r\nabc\r\n", true, false},
		{"literal8 (RFC 3516)", "c APPEND INBOX ~{3}\r\nabc\r\n", true, false},
		{"literal holding CRLFs", "c APPEND INBOX {8}\r\na\r\n\r\nb\r\n", false, false},
		{"two literals", "c LOGIN {1}\r\na {2}\r\nbc\r\n", true, false},
		{"COMPRESS", "c COMPRESS DEFLATE\r\n", false, false},
	}
	for _, tt := range tests {
		for _, byByte := range []bool{false, true} {
			name := tt.name
			if byByte {
				name += ", byte by byte"
			}
			t.Run(name, func(t *testing.T) {
				sink := &sinkConn{}
				u := newUpstreamConn(sink)
				chunks := []string{tt.stream}
				if byByte {
					chunks = strings.Split(tt.stream, "")
				}
				for _, ch := range chunks {
					if _, err := u.Write([]byte(ch)); err != nil {
						t.Fatal(err)
					}
				}
				// Splice's reading side: after logout's kick, it reads
				// again, now through the goodbye.
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					for !u.ending.Load() {
						select {
						case <-stop:
							return
						default:
							runtime.Gosched()
						}
					}
					u.Read(make([]byte, 16))
				}()
				if got := u.logout("* BYE x"); got != tt.safe {
					t.Fatalf("logout after %q = %v, want %v", tt.stream, got, tt.safe)
				}
				got := strings.TrimPrefix(sink.String(), tt.stream)
				want := ""
				if tt.safe {
					want = string(u.tail.tag) + "LOGOUT\r\n"
					if tt.idle {
						want = "DONE\r\n" + want
					}
				}
				if got != want || !strings.HasPrefix(sink.String(), tt.stream) {
					t.Errorf("upstream got %q after the client's bytes, want %q", got, want)
				}
				if _, err := u.Write([]byte("d NOOP\r\n")); err != nil || strings.Contains(sink.String(), "d NOOP") {
					t.Errorf("a command after logout reached the upstream (err %v)", err)
				}
				if u.logout("* BYE again") {
					t.Error("a second LOGOUT was sent")
				}
			})
		}
	}
}

// TestByeTail: after passgate's LOGOUT, the upstream's last bytes reach
// the client with its "* BYE" and the tagged answer replaced by passgate's
// BYE, whatever the read sizes; anything else passes unchanged.
func TestByeTail(t *testing.T) {
	const tag = "pgx1"
	long := strings.Repeat("x", 3*maxHeld)
	tests := []struct{ name, upstream, client string }{
		{"goodbye only", "* BYE Logging out\r\npgx1 OK Logout completed.\r\n", "* BYE ours\r\n"},
		{"after a fetch", "* 1 FETCH (BODY[] {5}\r\nhello)\r\nb OK done\r\n* BYE Logging out\r\npgx1 OK Logout completed.\r\n",
			"* 1 FETCH (BODY[] {5}\r\nhello)\r\nb OK done\r\n* BYE ours\r\n"},
		{"after IDLE", "b OK Idle completed.\r\n* BYE Logging out\r\npgx1 OK Logout completed.\r\n", "b OK Idle completed.\r\n* BYE ours\r\n"},
		{"after a long literal", "* 1 FETCH (BODY[] {12288}\r\n" + long + ")\r\n* BYE Logging out\r\npgx1 OK Logout completed.\r\n",
			"* 1 FETCH (BODY[] {12288}\r\n" + long + ")\r\n* BYE ours\r\n"},
		{"tagged answer without BYE", "pgx1 OK Logout completed.\r\n", "* BYE ours\r\n"},
		{"closed without answering", "* 1 EXISTS\r\n", "* 1 EXISTS\r\n"},
		{"closed mid-line", "* 1 FETCH (BODY[] {5}\r\nhel", "* 1 FETCH (BODY[] {5}\r\nhel"},
		{"another tag", "* BYE Logging out\r\npgx12 OK x\r\n", "* BYE Logging out\r\npgx12 OK x\r\n"},
		{"nothing", "", ""},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 7, 512, 32 << 10} {
			for _, kicked := range []bool{false, true} {
				tail := byeTail{tag: []byte(tag + " "), bye: "* BYE ours", lineStart: true}
				src := &chunkReader{b: []byte(tt.upstream), size: size, kicked: kicked}
				var got bytes.Buffer
				p := make([]byte, size)
				for {
					n, err := tail.read(src, p)
					got.Write(p[:n])
					if err == io.EOF {
						break
					}
					if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatal(err)
					}
				}
				if got.String() != tt.client {
					t.Errorf("%s, reads of %d, kicked %v: client got %q, want %q", tt.name, size, kicked, got.String(), tt.client)
				}
			}
		}
	}
}

// chunkReader returns b in reads of at most size bytes; if kicked, every
// other read times out instead (Splice's idle check, logout's kick).
type chunkReader struct {
	b      []byte
	size   int
	kicked bool
	reads  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.reads++; r.kicked && r.reads%2 == 1 {
		return 0, os.ErrDeadlineExceeded
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// answerLogout plays the upstream's part of a goodbye: it reads passgate's
// LOGOUT (after DONE if wantDone), sends first, its BYE and tagged OK, and
// closes.
func answerLogout(t *testing.T, peer *client, wantDone bool, first string) {
	t.Helper()
	if wantDone {
		peer.expect("DONE")
	}
	tag, cmd, _ := strings.Cut(peer.line(), " ")
	if cmd != "LOGOUT" || tag == "" {
		t.Fatalf("upstream got %q %q, want LOGOUT", tag, cmd)
	}
	peer.send(first + "* BYE Logging out\r\n" + tag + " OK Logout completed.\r\n")
	peer.conn.Close()
}

// TestShutdownMidLiteral: when the grace period ends while the upstream is
// in the middle of a literal, the BYE comes after the literal's response:
// the upstream answers passgate's LOGOUT after it.
func TestShutdownMidLiteral(t *testing.T) {
	e := newEnv(t, cleartext)
	c, peer := e.loggedIn()
	c.expect("* 3 EXISTS")
	c.send("b FETCH 1 BODY[]\r\n")
	peer.expect("b FETCH 1 BODY[]")
	peer.send("* 1 FETCH (BODY[] {5}\r\nabc")
	c.expect("* 1 FETCH (BODY[] {5}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	answerLogout(t, peer, false, "de)\r\nb OK Fetch completed.\r\n")
	c.expect("abcde)")
	c.expect("b OK Fetch completed.")
	c.expect("* BYE Server shutting down")
	c.expectClosed()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestShutdownMidCommand: a client that has sent half a command gets no
// BYE (the upstream would take LOGOUT as the rest of it), only the close.
func TestShutdownMidCommand(t *testing.T) {
	e := newEnv(t, cleartext)
	c, peer := e.loggedIn()
	c.expect("* 3 EXISTS")
	c.send("b APPEND INBOX {10}\r\nabc")
	peer.expect("b APPEND INBOX {10}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v", err)
	}
	c.expectClosed()
	got, _ := io.ReadAll(peer.r)
	if string(got) != "abc" {
		t.Errorf("upstream got %q after the APPEND line, want only the client's bytes", got)
	}
}
