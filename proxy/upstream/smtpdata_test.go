package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/internal/testcert"
)

// dataWire opens a session with go-smtp's client to a scripted server over
// net.Pipe, which answers every command 250 (DATA 354) and records the
// bytes after 354 up to and including the end marker CRLF "." CRLF.
func dataWire(t testing.TB) (up *SMTPConn, wire <-chan []byte) {
	t.Helper()
	cc, sc := net.Pipe()
	t.Cleanup(func() { cc.Close(); sc.Close() })
	got := make(chan []byte, 1)
	go func() {
		r := bufio.NewReader(sc)
		sc.Write([]byte("220 test\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if !strings.HasPrefix(line, "DATA") {
				sc.Write([]byte("250 ok\r\n"))
				continue
			}
			sc.Write([]byte("354 go\r\n"))
			var body []byte
			for !bytes.HasSuffix(body, []byte("\r\n.\r\n")) {
				b, err := r.ReadByte()
				if err != nil {
					got <- body
					return
				}
				body = append(body, b)
			}
			got <- body
			sc.Write([]byte("250 2.0.0 queued\r\n"))
		}
	}()
	c := gosmtp.NewClient(cc)
	c.CommandTimeout, c.SubmissionTimeout = 10*time.Second, 10*time.Second
	if err := c.Mail("a@x.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@x.test", nil); err != nil {
		t.Fatal(err)
	}
	return &SMTPConn{Client: c, raw: cc, conn: cc, timeout: 10 * time.Second}, got
}

// dotWriter is what net/textproto's DotWriter sends for body.
func dotWriter(body []byte) []byte {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	w := textproto.NewWriter(bw).DotWriter()
	w.Write(body)
	w.Close()
	return b.Bytes()
}

// sendData writes body through SMTPData in writes of the given sizes
// (cycled; 0 counts as 1) and closes it.
func sendData(t testing.TB, up *SMTPConn, body []byte, sizes []byte) error {
	t.Helper()
	d, err := up.Data()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; len(body) > 0; i++ {
		n := len(body)
		if len(sizes) > 0 {
			n = min(n, max(1, int(sizes[i%len(sizes)])))
		}
		if _, err := d.Write(body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	_, err = d.Close()
	return err
}

// hasBareLineEnd reports whether b holds a CR not followed by LF or an LF
// not preceded by CR.
func hasBareLineEnd(b []byte) bool {
	return bytes.ContainsAny(bytes.ReplaceAll(b, []byte("\r\n"), nil), "\r\n")
}

var dataSeeds = []string{
	"",
	".",
	"\r\n",
	".\r\n",
	"..\r\n.\r\n",
	"a\r\n.b\r\n..c\r\n\r\n.\r\n",
	"no end",
	"ends in CRLF\r\n",
	"bare\nLF\r\n",
	"bare\rCR\r\n",
	"CR at the end\r",
	"\n.\n",
	"\r\n.\r",
}

// FuzzSMTPData holds SMTPData to net/textproto's DotWriter byte for byte
// for a body whose lines end in CRLF, whatever the write boundaries, and
// checks that a body with a bare CR or LF fails without any bare CR or LF
// reaching the upstream.
func FuzzSMTPData(f *testing.F) {
	for i, s := range dataSeeds {
		f.Add([]byte(s), []byte{byte(i), 1, 3})
		f.Add([]byte(s), []byte{})
	}
	f.Fuzz(func(t *testing.T, body, sizes []byte) {
		up, wire := dataWire(t)
		err := sendData(t, up, body, sizes)
		if hasBareLineEnd(body) {
			if !errors.Is(err, ErrBareLineEnd) {
				t.Fatalf("body %q: err %v, want ErrBareLineEnd", body, err)
			}
			up.Abort()
			if got := <-wire; hasBareLineEnd(got) {
				t.Fatalf("body %q: the upstream got %q", body, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if got, want := <-wire, dotWriter(body); !bytes.Equal(got, want) {
			t.Fatalf("body %q in writes of %v:\nsent %q\nDotWriter %q", body, sizes, got, want)
		}
	})
}

// TestSMTPDataTLS: with an upstream over STARTTLS or TLS (AUTH or
// XCLIENT), go-smtp's client speaks on passgate's own TLS connection, so
// that SMTPData writes the body onto it in chunks (never through go-smtp's
// DotWriter, byte by byte), and the upstream gets what DotWriter would
// send.
func TestSMTPDataTLS(t *testing.T) {
	body := []byte(strings.Repeat("a line\r\n.a dot\r\n", 20000))
	for _, tc := range []struct {
		name string
		tls  TLSMode
		mode Mode
	}{
		{"starttls", TLSStartTLS, ModeMaster},
		{"tls", TLSImplicit, ModeMaster},
		{"xclient starttls", TLSStartTLS, ModeXCLIENT},
		{"xclient tls", TLSImplicit, ModeXCLIENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wire := make(chan []byte, 1)
			addr := serve(t, tc.tls == TLSImplicit, func(s *script) {
				s.send("220-up.test ESMTP", "220 a greeting of two lines")
				if tc.tls == TLSStartTLS {
					s.expect(`EHLO \S+`)
					s.send("250-up.test\r\n250 STARTTLS")
					s.expect(`STARTTLS`)
					s.send("220 2.0.0 Ready to start TLS")
					s.startTLS()
				}
				s.expect(`EHLO passgate`)
				if tc.mode == ModeXCLIENT {
					s.send("250-up.test\r\n250 XCLIENT NAME ADDR LOGIN")
					s.expect(`XCLIENT LOGIN=alice .*`)
					s.send("220 up.test ESMTP")
					s.expect(`EHLO passgate`)
					s.send("250 up.test")
				} else {
					s.send(ehloAuth("PLAIN"))
					expectSASL(s, "PLAIN")
				}
				s.expect(`MAIL FROM:<a@x\.test>.*`)
				s.send("250 2.1.0 Ok")
				s.expect(`RCPT TO:<b@x\.test>`)
				s.send("250 2.1.5 Ok")
				s.expect(`DATA`)
				s.send("354 go")
				wire <- s.dotBody()
				s.send("250 2.0.0 queued")
				s.expect(`QUIT`)
				s.send("221 2.0.0 Bye")
			})
			u := smtpMaster(addr)
			u.Mode, u.TLS, u.TLSConfig = tc.mode, tc.tls, testcert.ClientConfig("")
			up, err := u.Login(context.Background(), alice)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			defer up.Quit(scriptDeadline)
			if err := up.Client.Mail("a@x.test", nil); err != nil {
				t.Fatal(err)
			}
			if err := up.Client.Rcpt("b@x.test", nil); err != nil {
				t.Fatal(err)
			}
			d, err := up.Data()
			if err != nil {
				t.Fatal(err)
			}
			if c, ok := d.conn.(*tls.Conn); !ok || !c.ConnectionState().HandshakeComplete {
				t.Fatalf("the body goes onto a %T, not the session's TLS connection", d.conn)
			}
			for p := body; len(p) > 0; p = p[min(len(p), 64<<10):] {
				if _, err := d.Write(p[:min(len(p), 64<<10)]); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			if _, err := d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := <-wire; !bytes.Equal(got, dotWriter(body)) {
				t.Errorf("the upstream got %d bytes unlike DotWriter's %d", len(got), len(dotWriter(body)))
			}
		})
	}
}

// dotBody reads a message body up to and including its end marker
// CRLF "." CRLF.
func (s *script) dotBody() []byte {
	var body []byte
	for s.err == nil && !bytes.HasSuffix(body, []byte("\r\n.\r\n")) {
		s.conn.SetReadDeadline(time.Now().Add(scriptDeadline))
		b, err := s.br.ReadByte()
		if err != nil {
			s.fail("body: %v", err)
		}
		body = append(body, b)
	}
	return body
}

// BenchmarkSMTPData writes a 10 MiB body with a dot-started line every
// 100 lines through SMTPData and through go-smtp's DotWriter, in 64 KiB
// writes, to a net.Pipe whose other end discards.
func BenchmarkSMTPData(b *testing.B) {
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do\r\n"
	body := []byte(strings.Repeat(strings.Repeat(line, 99)+"."+line, (10<<20)/(100*len(line))))
	for _, fast := range []bool{false, true} {
		name := "DotWriter"
		if fast {
			name = "SMTPData"
		}
		b.Run(name, func(b *testing.B) {
			cc, sc := net.Pipe()
			defer cc.Close()
			go io.Copy(io.Discard, sc)
			d := &SMTPData{conn: cc, raw: cc, timeout: time.Minute, lineStart: true}
			var w io.Writer = d
			if !fast {
				w = textproto.NewWriter(bufio.NewWriter(cc)).DotWriter()
			}
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				for p := body; len(p) > 0; {
					n := min(len(p), 64<<10)
					if _, err := w.Write(p[:n]); err != nil {
						b.Fatal(err)
					}
					p = p[n:]
				}
			}
		})
	}
}
