package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"time"
)

// smtpConn is a lean SMTP submission client (RFC 5321, RFC 4954 AUTH
// PLAIN): one session per message, the body written in one piece.
type smtpConn struct {
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// submit runs one session: greeting, EHLO, AUTH PLAIN, MAIL, RCPT, DATA
// with data (see dataOf), QUIT.
func submit(ctx context.Context, addr string, tlsConf *tls.Config, timeout time.Duration, user, secret, from, to string, data []byte) error {
	nc, err := dialLeg(ctx, addr, tlsConf, timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	c := &smtpConn{nc: nc, r: bufio.NewReaderSize(nc, 4096), timeout: timeout}
	if err := c.reply("greeting", 220); err != nil {
		return err
	}
	auth := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+secret))
	steps := []struct {
		verb, line string
		code       int
	}{
		{"EHLO", "EHLO bench.localhost", 250},
		{"AUTH", auth, 235},
		{"MAIL", "MAIL FROM:<" + from + ">", 250},
		{"RCPT", "RCPT TO:<" + to + ">", 250},
		{"DATA", "DATA", 354},
	}
	for _, s := range steps {
		if err := c.command(s.verb, s.line, s.code); err != nil {
			return err
		}
	}
	nc.SetDeadline(time.Now().Add(timeout + time.Duration(len(data)>>20)*time.Second))
	if _, err := nc.Write(data); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := c.reply("end of data", 250); err != nil {
		return err
	}
	return c.command("QUIT", "QUIT", 221)
}

// dataOf is msg as SMTP DATA: msg must end with CRLF and have no line
// starting with '.' (message makes such), so only the final "." line is
// added.
func dataOf(msg []byte) []byte {
	return append(msg[:len(msg):len(msg)], ".\r\n"...)
}

// command writes line (which is never quoted in errors: AUTH holds the
// secret) and reads the reply, which must have code.
func (c *smtpConn) command(verb, line string, code int) error {
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write([]byte(line + "\r\n")); err != nil {
		return fmt.Errorf("smtp %s: %w", verb, err)
	}
	return c.reply(verb, code)
}

// reply reads a (multi-line) reply and checks its code.
func (c *smtpConn) reply(what string, code int) error {
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("smtp %s: read reply: %w", what, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return fmt.Errorf("smtp %s: malformed reply %q", what, clip(line))
		}
		got, err := strconv.Atoi(string(line[:3]))
		if err != nil || got != code {
			return fmt.Errorf("smtp %s: %q, want %d: %w", what, clip(line), code, errNotOK)
		}
		if len(line) == 3 || line[3] != '-' {
			return nil
		}
	}
}
