package smtp

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// bodyServer is a go-smtp server whose sessions log every call they get;
// Data reads the body with messageBody (fast) or with lineEndReader over
// go-smtp's own reader (the reference: passgate before dataBody), through
// a buffer of bufSize bytes, and each read from the client connection
// returns at most chunk bytes, so that bodies cross go-smtp's buffer
// boundaries anywhere.
type bodyServer struct {
	fast    bool
	bufSize atomic.Int32
	chunk   atomic.Int32
	lastEOF atomic.Bool // the last bytes from the client come with io.EOF
	addr    string
	logs    chan []string
	slow    atomic.Int32 // DATA bodies messageBody did not read with dataBody
	checked atomic.Int32 // DATA bodies whose line lengths go-smtp's reader checked
	maxLine int
}

// startBodyServer serves on 127.0.0.1 with the given limits (0: none) until
// the test ends.
func startBodyServer(t testing.TB, fast bool, maxMessage int64, maxLine int) *bodyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bs := &bodyServer{fast: fast, addr: ln.Addr().String(), logs: make(chan []string, 1), maxLine: maxLine}
	srv := gosmtp.NewServer(bodyBackend{bs})
	srv.Domain = "body.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = maxMessage
	srv.MaxLineLength = maxLine
	srv.ErrorLog = quietLog{}
	go srv.Serve(shortReadListener{ln, bs})
	t.Cleanup(func() { srv.Close() })
	return bs
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

type shortReadListener struct {
	net.Listener
	bs *bodyServer
}

func (l shortReadListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &shortReadConn{Conn: c, max: int(l.bs.chunk.Load())}
	if l.bs.lastEOF.Load() {
		sc.ahead = bufio.NewReader(c)
	}
	return sc, nil
}

type shortReadConn struct {
	net.Conn
	max   int
	ahead *bufio.Reader // reads ahead to return the last bytes with io.EOF
}

// Read returns at most max bytes. With ahead, the last bytes the client
// sent come with io.EOF, as crypto/tls returns them when the client's
// close_notify follows at once.
func (c *shortReadConn) Read(p []byte) (int, error) {
	p = p[:min(len(p), c.max)]
	if c.ahead == nil {
		return c.Conn.Read(p)
	}
	n, err := c.ahead.Read(p)
	if err == nil && c.ahead.Buffered() == 0 {
		if _, err := c.ahead.Peek(1); err == io.EOF {
			return n, io.EOF
		}
	}
	return n, err
}

// Close reads what the client sent first: closing with unread data would
// reset the connection, and the client could lose replies it has not
// read yet.
func (c *shortReadConn) Close() error {
	c.Conn.(*net.TCPConn).CloseWrite()
	c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c.Conn)
	return c.Conn.Close()
}

type bodyBackend struct{ bs *bodyServer }

func (b bodyBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &bodySession{bs: b.bs, conn: c}, nil
}

type bodySession struct {
	bs   *bodyServer
	conn *gosmtp.Conn
	log  []string
}

func (s *bodySession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.log = append(s.log, "MAIL "+from)
	return nil
}

func (s *bodySession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.log = append(s.log, "RCPT "+to)
	return nil
}

func (s *bodySession) Reset() { s.log = append(s.log, "RESET") }

func (s *bodySession) Logout() error {
	s.bs.logs <- s.log
	return nil
}

func (s *bodySession) Data(r io.Reader) error {
	var src io.Reader = &lineEndReader{r: r}
	if s.bs.fast {
		var done func()
		src, done = messageBody(r, s.conn, func() {})
		defer done()
		b, ok := src.(*dataBody)
		if _, bdat := r.(*io.PipeReader); !ok && !bdat {
			s.bs.slow.Add(1)
		}
		if ok && b.lines == nil && s.bs.maxLine > 0 {
			// go-smtp checks lines in this body, unless its reader
			// failed before (it takes "DATA\r" for a command when the
			// read with the LF after it is refused).
			defer func() {
				if b.err != gosmtp.ErrTooLongLine {
					s.bs.checked.Add(1)
				}
			}()
		}
	}
	var got []byte
	buf := make([]byte, s.bs.bufSize.Load())
	for empty := 0; ; {
		n, err := src.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 {
			empty = 0
		}
		if err == nil && n == 0 {
			// lineEndReader returns nothing while it holds back a CR, as
			// when go-smtp's size limit leaves room for that CR alone.
			if empty++; empty < 100 {
				continue
			}
			err = io.ErrNoProgress
		}
		if err == io.EOF {
			err = nil
		}
		if err != nil || n == 0 {
			if len(got) > 4096 {
				got = fmt.Appendf(nil, "%d bytes, SHA-256 %x", len(got), sha256.Sum256(got))
			}
			s.log = append(s.log, fmt.Sprintf("DATA %q %v", got, err))
			return err
		}
	}
}

// transcript sends EHLO, MAIL, RCPT, DATA, then in, then an end marker
// and QUIT, and returns every reply and the session's calls.
func (bs *bodyServer) transcript(t testing.TB, in []byte, chunk, bufSize int) (replies string, calls []string) {
	t.Helper()
	bs.chunk.Store(int32(chunk))
	bs.bufSize.Store(int32(bufSize))
	c, err := net.Dial("tcp", bs.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var wg sync.WaitGroup
	var out []byte
	wg.Go(func() { out, _ = io.ReadAll(c) })
	msg := "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n" + string(in) + "\r\n.\r\nQUIT\r\n"
	c.Write([]byte(msg))
	c.(*net.TCPConn).CloseWrite()
	wg.Wait()
	// go-smtp ends a session before it closes the connection; a line too
	// long for the limit before EHLO ends the connection without one.
	select {
	case calls = <-bs.logs:
	default:
	}
	return string(out), calls
}

// bodyPair is the reference and the fast server with the same limits.
type bodyPair struct{ ref, fast *bodyServer }

func startBodyPair(t testing.TB, maxMessage int64, maxLine int) bodyPair {
	return bodyPair{startBodyServer(t, false, maxMessage, maxLine), startBodyServer(t, true, maxMessage, maxLine)}
}

// check sends in to both and fails unless the client and the session see
// the same: the same bodies and errors, the same replies, the same
// commands after the body (where the message ends).
func (p bodyPair) check(t testing.TB, in []byte, chunk, bufSize int) {
	t.Helper()
	refReplies, refCalls := p.ref.transcript(t, in, chunk, bufSize)
	replies, calls := p.fast.transcript(t, in, chunk, bufSize)
	if replies != refReplies || strings.Join(calls, "\n") != strings.Join(refCalls, "\n") {
		t.Fatalf("input %q (reads of %d, buffer %d):\ngo-smtp's reader: %q\n%q\ndataBody: %q\n%q",
			in, chunk, bufSize, refCalls, refReplies, calls, replies)
	}
	if n := p.fast.slow.Load(); n > 0 {
		t.Fatalf("messageBody read %d DATA bodies with go-smtp's reader: dataBody does not know this go-smtp", n)
	}
	if n := p.fast.checked.Load(); n > 0 {
		t.Fatalf("go-smtp's reader checked the line lengths of %d DATA bodies: dataBody does not know this go-smtp", n)
	}
}

// bodySeeds are bodies at the edges of go-smtp's reader: dots, CR and LF
// in every order, end markers other than CRLF.CRLF (as in SMTP smuggling),
// commands after the end, BDAT.
var bodySeeds = []string{
	"",
	".",
	"\r\n.\r\n",
	"Subject: x\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n",
	"line one\r\n.\r\n.leading dot\r\n..two dots\r\n\xc3\xa9 8bit\r\nlast\r\n",
	"first\n.\nMAIL FROM:<evil@x.test>\r\n",
	"first\r\n.\nMAIL FROM:<evil@x.test>\r\n",
	"first\n.\r\nMAIL FROM:<evil@x.test>\r\n",
	"first\r.\r\nMAIL FROM:<evil@x.test>\r\n",
	"first\r.\rMAIL FROM:<evil@x.test>\r\n",
	"first\n..\nMAIL FROM:<evil@x.test>\r\n",
	"first\r\n.\rMAIL FROM:<evil@x.test>\r\n",
	"first\r\n\x00.\r\nMAIL FROM:<evil@x.test>\r\n",
	".\r\r\n.\r\nMAIL FROM:<evil@x.test>\r\n",
	".\r.\r\n",
	"..\r\n.x\r\n.\r\r\n",
	"a\r\r\nb\r\n",
	"no end",
	"x\r",
	strings.Repeat("long line ", 30) + "\r\n.\r\n",
	strings.Repeat("0123456789abcdef\r\n", 10) + ".\r\nNOOP\r\n",
	"x\r\n.\r\nBDAT 5 LAST\r\nab\r\nc",
	"x\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n.two\r\n.\r\n",
}

// longLineSeeds are bodies with lines just below, at and just above a line
// limit of max bytes as go-smtp counts them (every byte since the last LF,
// the LF included): plain, dot-stuffed, as the last line, ending in a bare
// LF, and in the command after the end marker.
func longLineSeeds(max int) []string {
	var seeds []string
	for _, n := range []int{max - 3, max - 2, max - 1} { // content bytes of a line of max-1, max, max+1
		line := strings.Repeat("y", n)
		seeds = append(seeds,
			line,
			"a\r\n"+line+"\r\nb\r\n",
			"a\r\n."+line+"\r\n..\r\n",
			"a\r\n.."+line[1:]+"\r\nb",
			"a\n"+line+"\nb",
			"a\r\n.\r\nNOOP "+line[5:]+"\r\nNOOP\r\n",
		)
	}
	return seeds
}

// FuzzDataBody holds dataBody to go-smtp's own DATA reader with
// passgate's lineEndReader over it (see bodyServer), for any body, read
// boundaries and buffer size, with and without size and line limits.
func FuzzDataBody(f *testing.F) {
	for i, s := range append(bodySeeds, longLineSeeds(60)...) {
		f.Add([]byte(s), uint16(i%7+1), uint16(2+i%5), i%2 == 0)
		f.Add([]byte(s), uint16(4096), uint16(32<<10), i%2 == 1)
	}
	// limited: a line limit of 60, and a message limit of 100 with an odd
	// bufSize.
	pairs := [2][2]bodyPair{
		{startBodyPair(f, 0, 2000), startBodyPair(f, 0, 2000)},
		{startBodyPair(f, 0, 60), startBodyPair(f, 100, 60)},
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk, bufSize uint16, limited bool) {
		p := pairs[0][0]
		if limited {
			p = pairs[1][bufSize%2]
		}
		p.check(t, in, max(1, int(chunk)), max(2, int(bufSize)))
	})
}

// TestDataBodyMatchesGoSMTP runs the seeds of FuzzDataBody, lines about
// go-smtp's default limit and a large message, every read boundary from
// one byte to go-smtp's whole buffer.
func TestDataBodyMatchesGoSMTP(t *testing.T) {
	pairs := []bodyPair{startBodyPair(t, 0, 2000), startBodyPair(t, 0, 60), startBodyPair(t, 100, 60)}
	big := strings.Repeat("Lorem ipsum dolor sit amet\r\n.dot\r\n", 3000)
	seeds := append(append(bodySeeds, longLineSeeds(60)...), longLineSeeds(2000)...)
	for _, s := range append(seeds, big) {
		for _, chunk := range []int{1, 2, 3, 5, 64, 4096} {
			for _, p := range pairs {
				p.check(t, []byte(s), chunk, 3)
				p.check(t, []byte(s), chunk, 64<<10)
			}
		}
	}
}

// TestDataBodyLastReadWithEOF: go-smtp does not check the line lengths in
// a read that also ends the connection; neither does dataBody.
func TestDataBodyLastReadWithEOF(t *testing.T) {
	p := startBodyPair(t, 0, 60)
	p.ref.lastEOF.Store(true)
	p.fast.lastEOF.Store(true)
	for _, s := range longLineSeeds(60) {
		for _, chunk := range []int{1, 5, 64} {
			p.check(t, []byte(s), chunk, 64<<10)
		}
	}
}

// TestDataBodyErrors: dataBody's errors are the ones Data turns into
// replies, and the message ends where go-smtp's reader ends it.
func TestDataBodyErrors(t *testing.T) {
	pair := startBodyPair(t, 100, 60)
	for _, tt := range []struct {
		body string
		err  error
	}{
		{"a\nb\r\n", errBareLineEnd},
		{strings.Repeat("xxxxxxxxx\r\n", 12), gosmtp.ErrDataTooLarge},
		{strings.Repeat("x", 70) + "\r\n", gosmtp.ErrTooLongLine},
	} {
		_, calls := pair.fast.transcript(t, []byte(tt.body), 16, 64<<10)
		want := fmt.Sprintf("%v", tt.err)
		if len(calls) < 3 || !strings.HasPrefix(calls[2], "DATA ") || !strings.HasSuffix(calls[2], want) {
			t.Errorf("body %q: calls %q, want DATA ending in %v", tt.body, calls, tt.err)
		}
	}
}

// BenchmarkDataBody decodes a 10 MiB body through dataBody and through
// lineEndReader over go-smtp's reader, each read from a real go-smtp
// session over loopback.
func BenchmarkDataBody(b *testing.B) {
	body := bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do\r\n"), (10<<20)/66)
	for _, fast := range []bool{false, true} {
		name := "gosmtp+lineEndReader"
		if fast {
			name = "dataBody"
		}
		b.Run(name, func(b *testing.B) {
			bs := startBodyServer(b, fast, 0, 2000)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				bs.transcript(b, body, 1<<20, 64<<10)
			}
		})
	}
}

// BenchmarkDataBodyDecode is dataBody alone: a 10 MiB body with a
// dot-stuffed line every 100 lines, from memory through a 4 KiB
// bufio.Reader (go-smtp's size) into a 64 KiB buffer (relayBody's).
func BenchmarkDataBodyDecode(b *testing.B) {
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do\r\n"
	wire := []byte(strings.Repeat(strings.Repeat(line, 99)+".."+line, (10<<20)/(100*len(line))) + ".\r\n")
	br := bufio.NewReaderSize(nil, 4096)
	buf := make([]byte, bodyBufSize)
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		br.Reset(bytes.NewReader(wire))
		body := &dataBody{br: br, before: func() {}}
		for {
			_, err := body.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
