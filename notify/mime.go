package notify

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// compose writes msg as an Internet message (RFC 5322) from from to to: a
// multipart/alternative (RFC 2046 §5.1.4) of the plain text and the HTML,
// each quoted-printable UTF-8, with the Subject encoded (RFC 2047) when it
// is not ASCII, and Auto-Submitted: auto-generated (RFC 3834 §5) so that
// vacation responders stay quiet.
func compose(from, to string, msg Message, now time.Time) ([]byte, error) {
	var h mail.Header
	h.SetDate(now)
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(msg.Subject)
	if err := h.GenerateMessageIDWithHostname(domainOf(from)); err != nil {
		return nil, fmt.Errorf("compose notification: %w", err)
	}
	h.Set("MIME-Version", "1.0")
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("X-Auto-Response-Suppress", "All") // Exchange's equivalent
	h.Set("Content-Language", msg.Lang)
	h.SetContentType("multipart/alternative", nil)

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("compose notification: %w", err)
	}
	for _, p := range []struct{ typ, body string }{{"text/plain", msg.Text}, {"text/html", msg.HTML}} {
		var ph message.Header
		ph.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, fmt.Errorf("compose notification: %w", err)
		}
		if _, err := pw.Write([]byte(crlf(p.body))); err != nil {
			return nil, fmt.Errorf("compose notification: %w", err)
		}
		if err := pw.Close(); err != nil {
			return nil, fmt.Errorf("compose notification: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose notification: %w", err)
	}
	return buf.Bytes(), nil
}

// crlf makes every line end in CRLF, as a message body must (RFC 5322
// §2.3).
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// domainOf is the domain of an address, for Message-ID.
func domainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 && at < len(addr)-1 {
		return addr[at+1:]
	}
	return "localhost"
}
