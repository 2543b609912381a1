package smtp

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// xclientUpstream is a scripted Postfix-like upstream for xclient mode:
// EHLO, XCLIENT (answered by a new greeting), EHLO, MAIL, RCPT, DATA, QUIT.
// MAIL before XCLIENT is refused, as Postfix does without SASL.
type xclientUpstream struct {
	addr string

	mu       sync.Mutex
	lines    []string // every command line
	bodies   [][]byte
	xclients []string
}

func startXCLIENT(t testing.TB) *xclientUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := &xclientUpstream{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				x.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return x
}

func (x *xclientUpstream) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReader(c)
	say := func(s string) { io.WriteString(c, s+"\r\n") }
	say("220 postfix.test ESMTP")
	xclient := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		x.mu.Lock()
		x.lines = append(x.lines, line)
		x.mu.Unlock()
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch verb {
		case "EHLO":
			say("250-postfix.test\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-XCLIENT NAME ADDR PROTO HELO LOGIN\r\n250 ENHANCEDSTATUSCODES")
		case "XCLIENT":
			x.mu.Lock()
			x.xclients = append(x.xclients, line)
			x.mu.Unlock()
			xclient = true
			say("220 postfix.test ESMTP")
		case "MAIL":
			if !xclient {
				say("530 5.7.0 Authentication required")
				continue
			}
			say("250 2.1.0 Ok")
		case "RCPT":
			say("250 2.1.5 Ok")
		case "DATA":
			say("354 End data with <CR><LF>.<CR><LF>")
			var body []byte
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				body = append(body, strings.TrimPrefix(l, ".")...)
			}
			x.mu.Lock()
			x.bodies = append(x.bodies, body)
			x.mu.Unlock()
			say("250 2.0.0 Ok: queued as 4XYZ")
		case "RSET", "NOOP":
			say("250 2.0.0 Ok")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}
