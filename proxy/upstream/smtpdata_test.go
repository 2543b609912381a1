package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
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

// TestSMTPDataSlowPath: without the connection (go-smtp's own STARTTLS),
// the body goes through go-smtp's DotWriter, with the same bytes and the
// same refusal of bare line ends.
func TestSMTPDataSlowPath(t *testing.T) {
	for _, s := range dataSeeds {
		up, wire := dataWire(t)
		up.conn = nil
		err := sendData(t, up, []byte(s), []byte{2})
		if hasBareLineEnd([]byte(s)) {
			if !errors.Is(err, ErrBareLineEnd) {
				t.Errorf("body %q: err %v, want ErrBareLineEnd", s, err)
			}
			continue
		}
		if got, want := <-wire, dotWriter([]byte(s)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("body %q: err %v, sent %q, want %q", s, err, got, want)
		}
	}
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
