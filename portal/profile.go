package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/store"
)

// The .mobileconfig download: creating an app password stores, for
// profileTTL, the password sealed with Key under the hash of a random token
// that the result page POSTs back. The first download deletes it.

const (
	profilePrefix = "portal/profile/"
	profileTTL    = 10 * time.Minute
)

type profileEntry struct {
	User   string `json:"u"`
	Name   string `json:"n"`
	Sealed []byte `json:"p"`
}

func profileKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return profilePrefix + hex.EncodeToString(sum[:])
}

// newProfileToken keeps np's password for one download and returns the
// token.
func (s *Server) newProfileToken(ctx context.Context, user string, np account.NewAppPassword) (string, error) {
	sealed, err := s.seal("profile", user, []byte(authn.NormalizeSecret(np.Password)))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(profileEntry{User: user, Name: np.Name, Sealed: sealed})
	if err != nil {
		return "", fmt.Errorf("profile token: %w", err)
	}
	token := newToken()
	if err := s.Store.PutKV(ctx, profileKey(token), b, profileTTL); err != nil {
		return "", fmt.Errorf("profile token: %w", err)
	}
	return token, nil
}

// downloadProfile answers the result page's download button once.
func (s *Server) downloadProfile(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	gone := func() {
		s.renderError(w, r, rc, http.StatusGone, "Download no longer available",
			"A configuration profile can be downloaded once, right after the app password is created. "+
				"Create a new app password to get a new profile.")
	}
	token := r.PostFormValue("token")
	if token == "" || len(token) > 100 {
		gone()
		return
	}
	key := profileKey(token)
	b, err := s.Store.GetKV(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		gone()
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	var e profileEntry
	if json.Unmarshal(b, &e) != nil || e.User != rc.acct.Username {
		gone()
		return
	}
	if err := s.Store.DeleteKV(ctx, key); err != nil {
		s.unavailable(w, r, err)
		return
	}
	pw, err := s.open("profile", e.User, e.Sealed)
	if err != nil {
		gone()
		return
	}
	body := s.mobileconfig(e.User, e.Name, string(pw))
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+profileFileName(e.Name)+`"`)
	w.Write(body)
}

// profileFileName is "passgate-NAME.mobileconfig" with NAME reduced to
// ASCII letters and digits, other runs becoming one '-'.
func profileFileName(name string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '-'
	}, name)
	for strings.Contains(clean, "--") {
		clean = strings.ReplaceAll(clean, "--", "-")
	}
	clean = strings.Trim(clean, "-")
	if clean == "" {
		clean = "mail"
	}
	return "passgate-" + clean + ".mobileconfig"
}

// mobileconfig is an Apple configuration profile (a property list) with one
// com.apple.mail.managed payload: the IMAP and SMTP account with the app
// password. It is unsigned; the device asks before installing it.
func (s *Server) mobileconfig(user, name, password string) []byte {
	m := s.mail()
	host := m.IMAPHost
	ident := "org.passgate." + reverseHost(host)
	// UseSSL is implicit TLS only; false covers STARTTLS (Mail upgrades
	// when the server offers it) and SecurityNone.
	mailDict := plistDict{
		{"EmailAccountDescription", plistString(name + " (" + host + ")")},
		{"EmailAccountName", plistString(user)},
		{"EmailAccountType", plistString("EmailTypeIMAP")},
		{"IncomingMailServerAuthentication", plistString("EmailAuthPassword")},
		{"IncomingMailServerHostName", plistString(m.IMAPHost)},
		{"IncomingMailServerPortNumber", plistInt(m.IMAPPort)},
		{"IncomingMailServerUseSSL", plistBool(m.IMAPSecurity == SecurityTLS)},
		{"IncomingMailServerUsername", plistString(user)},
		{"IncomingPassword", plistString(password)},
		{"OutgoingMailServerAuthentication", plistString("EmailAuthPassword")},
		{"OutgoingMailServerHostName", plistString(m.SMTPHost)},
		{"OutgoingMailServerPortNumber", plistInt(m.SMTPPort)},
		{"OutgoingMailServerUseSSL", plistBool(m.SMTPSecurity == SecurityTLS)},
		{"OutgoingMailServerUsername", plistString(user)},
		{"OutgoingPasswordSameAsIncomingPassword", plistBool(true)},
		{"PayloadDescription", plistString("Mail account " + user + " with the app password " + name)},
		{"PayloadDisplayName", plistString("Mail: " + user)},
		{"PayloadIdentifier", plistString(ident + ".mail." + newUUID())},
		{"PayloadType", plistString("com.apple.mail.managed")},
		{"PayloadUUID", plistString(newUUID())},
		{"PayloadVersion", plistInt(1)},
	}
	if strings.Contains(user, "@") {
		mailDict = append(mailDict, plistKV{"EmailAddress", plistString(user)})
	}
	root := plistDict{
		{"PayloadContent", plistArray{mailDict}},
		{"PayloadDescription", plistString("Sets up " + user + " with an app password made by " + s.issuer() + ".")},
		{"PayloadDisplayName", plistString(s.issuer() + ": " + user + " (" + name + ")")},
		{"PayloadIdentifier", plistString(ident + "." + newUUID())},
		{"PayloadRemovalDisallowed", plistBool(false)},
		{"PayloadType", plistString("Configuration")},
		{"PayloadUUID", plistString(newUUID())},
		{"PayloadVersion", plistInt(1)},
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	root.write(&b, 0)
	b.WriteString("</plist>\n")
	return b.Bytes()
}

// reverseHost turns "mail.example.org" into "org.example.mail".
func reverseHost(host string) string {
	parts := strings.Split(strings.ToLower(host), ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// A minimal property list writer: dicts keep their key order.
type (
	plistValue interface {
		write(b *bytes.Buffer, depth int)
	}
	plistString string
	plistInt    int
	plistBool   bool
	plistArray  []plistValue
	plistKV     struct {
		Key   string
		Value plistValue
	}
	plistDict []plistKV
)

func indent(b *bytes.Buffer, depth int) { b.WriteString(strings.Repeat("\t", depth)) }

func (v plistString) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<string>")
	xml.EscapeText(b, []byte(v))
	b.WriteString("</string>\n")
}

func (v plistInt) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	fmt.Fprintf(b, "<integer>%d</integer>\n", int(v))
}

func (v plistBool) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	if v {
		b.WriteString("<true/>\n")
	} else {
		b.WriteString("<false/>\n")
	}
}

func (v plistArray) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<array>\n")
	for _, e := range v {
		e.write(b, depth+1)
	}
	indent(b, depth)
	b.WriteString("</array>\n")
}

func (v plistDict) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<dict>\n")
	for _, kv := range v {
		indent(b, depth+1)
		b.WriteString("<key>")
		xml.EscapeText(b, []byte(kv.Key))
		b.WriteString("</key>\n")
		kv.Value.write(b, depth+1)
	}
	indent(b, depth)
	b.WriteString("</dict>\n")
}
