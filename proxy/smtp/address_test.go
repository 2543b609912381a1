package smtp

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// lastCommand returns the last line starting with prefix that the upstream
// received on its newest connection, and how many such lines it received
// on all of them.
func (s *sink) lastCommand(prefix string) (last string, count int) {
	for _, w := range s.wire() {
		for _, l := range strings.Split(w, "\r\n") {
			if strings.HasPrefix(l, prefix) {
				last = l
				count++
			}
		}
	}
	return last, count
}

// Replies to addresses passgate cannot write upstream faithfully.
const (
	replyBadSender    = "501 5.1.7 Bad sender address syntax"
	replyBadRecipient = "501 5.1.3 Bad recipient address syntax"
)

// addressForms are the forms of RFC 5321 §4.1.2 a path can take, as the
// client writes it and as the upstream must receive it ("" when passgate
// must refuse it, and the upstream receive nothing). A local part goes
// upstream as a Dot-string when it is one, else as a Quoted-string with
// only DQUOTE and backslash escaped, so that nothing in it can end the path
// or add a parameter.
var addressForms = []struct {
	name, client, upstream string
}{
	{"dot-string", "<alice@example.org>", "<alice@example.org>"},
	{"dot-string with every atext special", "<!#$%&'*+-/=?^_`{|}~.x@example.org>", "<!#$%&'*+-/=?^_`{|}~.x@example.org>"},
	{"UTF-8 local part and domain (RFC 6531)", "<dörte@exämple.org>", "<dörte@exämple.org>"},
	{"quoted-string that needs no quotes", `<"alice"@example.org>`, "<alice@example.org>"},
	{"quoted-string with a space", `<"john smith"@example.org>`, `<"john smith"@example.org>`},
	{"quoted-string with specials", `<"a(b)c,d;e:f<g>h[i]j@k"@example.org>`, `<"a(b)c,d;e:f<g>h[i]j@k"@example.org>`},
	{"quoted-string with escapes", `<"a\"b\\c"@example.org>`, `<"a\"b\\c"@example.org>`},
	{"quoted-string with a needless escape", `<"a\bc"@example.org>`, "<abc@example.org>"},
	{"quoted-string with two dots", `<"a..b"@example.org>`, `<"a..b"@example.org>`},
	{"quoted-string with a leading dot", `<".a"@example.org>`, `<".a"@example.org>`},
	{"quoted-string smuggling parameters", `<"victim@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x"@x.example>`,
		`<"victim@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x"@x.example>`},
	{"quoted-string closing the path", `<"v@example.net>"@x.example>`, `<"v@example.net>"@x.example>`},
	{"IPv4 address literal", "<bob@[192.0.2.1]>", "<bob@[192.0.2.1]>"},
	{"IPv6 address literal", "<bob@[IPv6:2001:db8::1]>", "<bob@[IPv6:2001:db8::1]>"},
	{"general address literal", "<bob@[x-tag:abc]>", "<bob@[x-tag:abc]>"},
	{"source route (ignored, RFC 5321 §4.1.1.3)", "<@a.example,@b.example:bob@example.net>", "<bob@example.net>"},
	{"postmaster at a domain", "<postmaster@example.org>", "<postmaster@example.org>"},
	{"tab in a quoted-string", "<\"a\tb\"@example.org>", ""},
	{"control character in a quoted-string", "<\"a\x01b\"@example.org>", ""},
	{"DEL in a quoted-string", "<\"a\x7fb\"@example.org>", ""},
	{"invalid UTF-8 in a quoted-string", "<\"a\xffb\"@example.org>", ""},
	{"quote inside the domain", `<bob@exa"mple.org>`, ""},
	{"angle bracket inside the domain", "<bob@exa<mple.org>", ""},
	{"empty domain label", "<bob@example..org>", ""},
	{"unterminated address literal", "<bob@[192.0.2.1>", ""},
	{"backslash in an address literal", `<bob@[192.0.2.1\]>`, ""},
}

// TestEnvelopeAddressForms writes every form as MAIL FROM and as RCPT TO
// and checks the exact command line the upstream received.
func TestEnvelopeAddressForms(t *testing.T) {
	e := newEnv(t, nil, nil) // CheckSender off: any sender goes upstream
	c := &badConn{textConn: dialText(t, e.addr)}
	c.run(steps(ehlo, authOK))
	for _, tt := range addressForms {
		t.Run("MAIL FROM "+tt.name, func(t *testing.T) {
			_, before := e.sink.lastCommand("MAIL FROM:")
			code, msg := c.transact("MAIL FROM:" + tt.client + " SMTPUTF8")
			got, after := e.sink.lastCommand("MAIL FROM:")
			if tt.upstream == "" {
				if reply := joinReply(code, msg); reply != replyBadSender {
					t.Errorf("reply %q, want %q", reply, replyBadSender)
				}
				if after != before {
					t.Errorf("the upstream received %q", got)
				}
				return
			}
			if want := "MAIL FROM:" + tt.upstream + " BODY=8BITMIME SMTPUTF8"; code != 250 || got != want {
				t.Errorf("reply %d %s; upstream received %q, want %q", code, msg, got, want)
			}
			c.transactWant("RSET", 250, "")
		})
		t.Run("RCPT TO "+tt.name, func(t *testing.T) {
			c.transactWant("MAIL FROM:<"+appUser+"> SMTPUTF8", 250, "")
			defer c.transactWant("RSET", 250, "")
			_, before := e.sink.lastCommand("RCPT TO:")
			code, msg := c.transact("RCPT TO:" + tt.client)
			got, after := e.sink.lastCommand("RCPT TO:")
			if tt.upstream == "" {
				if reply := joinReply(code, msg); reply != replyBadRecipient {
					t.Errorf("reply %q, want %q", reply, replyBadRecipient)
				}
				if after != before {
					t.Errorf("the upstream received %q", got)
				}
				return
			}
			if want := "RCPT TO:" + tt.upstream; code != 250 || got != want {
				t.Errorf("reply %d %s; upstream received %q, want %q", code, msg, got, want)
			}
		})
	}
	t.Run("null reverse-path", func(t *testing.T) {
		c.transactWant("MAIL FROM:<>", 250, "")
		if got, _ := e.sink.lastCommand("MAIL FROM:"); got != "MAIL FROM:<> BODY=8BITMIME" {
			t.Errorf("upstream received %q", got)
		}
		c.transactWant("RSET", 250, "")
	})
	t.Run("Postmaster without a domain", func(t *testing.T) {
		// RFC 5321 §4.1.1.3 <Postmaster>: go-smtp's parser wants a domain
		// and refuses it before passgate sees it.
		c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
		c.transactWant("RCPT TO:<Postmaster>", 501, "5.5.2 Was expecting RCPT arg syntax of TO:<address>")
		c.transactWant("RSET", 250, "")
	})
}

// TestSmuggledParametersReachNoUpstream: the quoted local part of the issue
// reaches the upstream as one recipient, without DSN parameters.
func TestSmuggledParametersReachNoUpstream(t *testing.T) {
	e := newEnv(t, nil, nil)
	c := &badConn{textConn: dialText(t, e.addr)}
	c.run(steps(ehlo, authOK))
	c.transactWant("MAIL FROM:<"+appUser+">", 250, "")
	c.transactWant(`RCPT TO:<"victim@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x"@x.example>`, 250, "")
	c.transactWant("DATA", 354, "")
	c.transactWant("Subject: x\r\n\r\nbody\r\n.", 250, "")
	msgs := e.sink.messages()
	if len(msgs) != 1 {
		t.Fatalf("the upstream accepted %d messages", len(msgs))
	}
	m := msgs[0]
	if want := "victim@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@x.example"; len(m.rcpts) != 1 || m.rcpts[0] != want {
		t.Errorf("the upstream's recipients %q, want only %q", m.rcpts, want)
	}
	for _, o := range m.rOpts {
		if len(o.Notify) != 0 || o.OriginalRecipient != "" {
			t.Errorf("DSN parameters reached the upstream: %+v", o)
		}
	}
}

// joinReply is a reply as one line: code and text.
func joinReply(code int, msg string) string {
	return strconv.Itoa(code) + " " + msg
}

// parseMailbox is a strict RFC 5321 §4.1.2 Mailbox parser (Local-part
// "@" domain, with a Quoted-string of qtextSMTP and quoted-pairSMTP, UTF-8
// allowed as RFC 6531 does): the reference FuzzUpstreamPath holds
// upstreamPath to. It returns the mailbox decoded as go-smtp decodes it.
func parseMailbox(s string) (string, bool) {
	var local, rest string
	if q, ok := strings.CutPrefix(s, `"`); ok {
		var b strings.Builder
		i := 0
		for ; i < len(q) && q[i] != '"'; i++ {
			c := q[i]
			if c == '\\' {
				if i++; i == len(q) || q[i] < 32 || q[i] > 126 {
					return "", false
				}
				c = q[i]
			} else if c < 32 || c == 127 {
				return "", false
			}
			b.WriteByte(c)
		}
		if i == len(q) {
			return "", false
		}
		local, rest = b.String(), q[i+1:]
	} else {
		at := strings.IndexByte(s, '@')
		if at < 0 || !isDotString(s[:at]) {
			return "", false
		}
		local, rest = s[:at], s[at:]
	}
	domain, ok := strings.CutPrefix(rest, "@")
	if !ok || !validDomain(domain) {
		return "", false
	}
	return local + "@" + domain, true
}

// FuzzUpstreamPath: whatever go-smtp decoded, what passgate writes upstream
// is one RFC 5321 Mailbox that decodes to exactly the same address, so no
// byte of it can end the path, start a parameter or a new command.
func FuzzUpstreamPath(f *testing.F) {
	for _, tt := range addressForms {
		f.Add(strings.Trim(tt.client, "<>"))
	}
	f.Add(`victim@example.net> NOTIFY=SUCCESS@x`)
	f.Add("a\r\nRSET@example.org")
	f.Fuzz(func(t *testing.T, mailbox string) {
		out, err := upstreamPath(mailbox)
		if err != nil {
			return
		}
		if mailbox == "" {
			if out != "" {
				t.Fatalf("null path written as %q", out)
			}
			return
		}
		got, ok := parseMailbox(out)
		if !ok || got != mailbox {
			t.Fatalf("upstreamPath(%q) = %q, which parses as %q (ok %v)", mailbox, out, got, ok)
		}
	})
}

// An account's own mail goes where the sender check says it may send
// from: its name if an address, else name@default_domain, else its first
// alias.
func TestPrimaryAddress(t *testing.T) {
	aliases := Senders(func(_ context.Context, user string) ([]string, error) {
		if user == "carol" {
			return []string{"not-an-address", "carol@example.net"}, nil
		}
		return nil, nil
	})
	for _, c := range []struct{ user, domain, want string }{
		{"alice@example.org", "example.com", "alice@example.org"},
		{"bob", "example.com", "bob@example.com"},
		{"carol", "", "carol@example.net"},
		{"dave", "", ""},
	} {
		got, err := aliases.Primary(c.domain)(context.Background(), c.user)
		if err != nil || got != c.want {
			t.Errorf("Primary(%q)(%q) = %q, %v; want %q", c.domain, c.user, got, err, c.want)
		}
	}
}
