package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// xclient runs the XCLIENT preamble of Postfix (XCLIENT_README): greeting,
// EHLO, optional STARTTLS and EHLO, then "XCLIENT LOGIN=<user> ADDR=<ip>
// NAME=[UNAVAILABLE]", written on the connection because go-smtp has no
// XCLIENT. The server answers XCLIENT with a fresh 220 greeting, which the
// go-smtp client returned reads as its own greeting before its EHLO.
func (u *SMTP) xclient(k *link, l Login) (*gosmtp.Client, error) {
	name := u.config().localName()
	br := bufio.NewReader(&replyLimitConn{Conn: k.conn})
	r := textproto.NewReader(br)
	if u.config().tlsMode() == TLSStartTLS {
		if _, err := u.startTLS(k); err != nil {
			return nil, err
		}
		br.Reset(&replyLimitConn{Conn: k.conn}) // TLS now
	} else if _, err := readGreeting(r); err != nil {
		return nil, err
	}
	ext, err := rawEHLO(k.conn, r, name)
	if err != nil {
		return nil, err
	}
	v, ok := ext["XCLIENT"]
	attrs, err := xclientAttrs(ok, v)
	if err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		return nil, errors.New("upstream xclient: unexpected data after EHLO reply")
	}
	if _, err := fmt.Fprintf(k.conn, "%s\r\n", xclientCommand(attrs, l)); err != nil {
		return nil, fmt.Errorf("upstream xclient: %w", err)
	}
	c := gosmtp.NewClient(&replyLimitConn{Conn: k.conn})
	u.setTimeouts(c)
	if err := c.Hello(name); err != nil {
		return nil, fmt.Errorf("upstream xclient: %w", err)
	}
	return c, nil
}

// xclientAttrs checks the XCLIENT keyword's attribute list: LOGIN and ADDR
// are needed; NAME is sent when offered.
func xclientAttrs(offered bool, param string) ([]string, error) {
	if !offered {
		return nil, errors.New("upstream does not offer XCLIENT to passgate (smtpd_authorized_xclient_hosts?)")
	}
	attrs := strings.Fields(strings.ToUpper(param))
	for _, need := range []string{"LOGIN", "ADDR"} {
		if !slices.Contains(attrs, need) {
			return nil, fmt.Errorf("upstream XCLIENT lacks the %s attribute", need)
		}
	}
	return attrs, nil
}

// xclientCommand builds the XCLIENT line; values are xtext-encoded.
func xclientCommand(offered []string, l Login) string {
	var b strings.Builder
	b.WriteString("XCLIENT LOGIN=")
	b.WriteString(xtext(l.Username))
	b.WriteString(" ADDR=")
	b.WriteString(xclientAddr(l.ClientIP.Addr()))
	if slices.Contains(offered, "NAME") {
		b.WriteString(" NAME=[UNAVAILABLE]")
	}
	return b.String()
}

// xclientAddr formats ADDR: dotted IPv4, "IPV6:" and the address for IPv6,
// "[UNAVAILABLE]" when unknown.
func xclientAddr(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "[UNAVAILABLE]"
	case ip.Is4():
		return ip.String()
	default:
		return "IPV6:" + ip.WithZone("").String()
	}
}

// xtext encodes s as RFC 3461 §4 xtext: "+", "=" and bytes outside "!".."~"
// become "+HH".
func xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
