package portal

import (
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Security is how a mail client protects its connection to passgate.
type Security string

// Securities; the zero value means SecurityTLS.
const (
	SecurityTLS      Security = "tls"      // implicit TLS (RFC 8314 §3.3): IMAP 993, SMTP 465
	SecuritySTARTTLS Security = "starttls" // STARTTLS: IMAP 143 (RFC 3501 §6.2.1), SMTP 587 (RFC 3207)
	// SecurityNone is no TLS at all: IMAP 143, SMTP 587. Only for a
	// listener on loopback, such as the demo's (config refuses it for a
	// host reached over a network).
	SecurityNone Security = "none"
)

// MailSettings are the passgate listeners that mail clients connect to, as
// shown on the result page and put in autoconfig, Autodiscover and
// .mobileconfig answers.
type MailSettings struct {
	// IMAPHost is the host name clients connect to. "" = BaseURL's host.
	IMAPHost string
	// IMAPPort: 0 = 993 for SecurityTLS, else 143.
	IMAPPort     int
	IMAPSecurity Security // "" = SecurityTLS
	// SMTPHost: "" = IMAPHost.
	SMTPHost string
	// SMTPPort: 0 = 465 for SecurityTLS, else 587.
	SMTPPort     int
	SMTPSecurity Security // "" = SecurityTLS
	// POP3 says passgate serves POP3 too: it is listed after IMAP, which
	// clients prefer. POP3Host: "" = IMAPHost; POP3Port: 0 = 995 for
	// SecurityTLS, else 110.
	POP3         bool
	POP3Host     string
	POP3Port     int
	POP3Security Security // "" = SecurityTLS
}

// mail returns Mail with its defaults applied.
func (s *Server) mail() MailSettings {
	m := s.Mail
	if m.IMAPHost == "" {
		m.IMAPHost = s.baseURL().Hostname()
	}
	if m.IMAPSecurity == "" {
		m.IMAPSecurity = SecurityTLS
	}
	if m.IMAPPort == 0 {
		m.IMAPPort = map[Security]int{SecurityTLS: 993, SecuritySTARTTLS: 143, SecurityNone: 143}[m.IMAPSecurity]
	}
	if m.SMTPHost == "" {
		m.SMTPHost = m.IMAPHost
	}
	if m.SMTPSecurity == "" {
		m.SMTPSecurity = SecurityTLS
	}
	if m.SMTPPort == 0 {
		m.SMTPPort = map[Security]int{SecurityTLS: 465, SecuritySTARTTLS: 587, SecurityNone: 587}[m.SMTPSecurity]
	}
	if m.POP3Host == "" {
		m.POP3Host = m.IMAPHost
	}
	if m.POP3Security == "" {
		m.POP3Security = SecurityTLS
	}
	if m.POP3Port == 0 {
		m.POP3Port = map[Security]int{SecurityTLS: 995, SecuritySTARTTLS: 110, SecurityNone: 110}[m.POP3Security]
	}
	return m
}

// Label is how the security is named on the result page.
func (sec Security) Label() string {
	switch sec {
	case SecuritySTARTTLS:
		return "STARTTLS"
	case SecurityNone:
		return "None (no TLS: this server listens on loopback only)"
	}
	return "SSL/TLS"
}

// Thunderbird autoconfig (the "clientConfig" format, version 1.1).
type clientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider emailProvider `xml:"emailProvider"`
}

type emailProvider struct {
	ID            string       `xml:"id,attr"`
	Domain        string       `xml:"domain"`
	DisplayName   string       `xml:"displayName"`
	ShortName     string       `xml:"displayShortName"`
	Incoming      []acServer   `xml:"incomingServer"` // in order of preference
	Outgoing      acServer     `xml:"outgoingServer"`
	Documentation *acDocumentn `xml:"documentation,omitempty"`
}

type acServer struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

type acDocumentn struct {
	URL   string `xml:"url,attr"`
	Descr string `xml:"descr"`
}

// socketType is the autoconfig name of sec: "SSL" (implicit TLS),
// "STARTTLS" or "plain".
func socketType(sec Security) string {
	switch sec {
	case SecuritySTARTTLS:
		return "STARTTLS"
	case SecurityNone:
		return "plain"
	}
	return "SSL"
}

// autoconfig answers Thunderbird's lookup: the address's domain is served
// by passgate's IMAP (and POP3, if on) and SMTP listeners, and the
// username is the address.
func (s *Server) autoconfig(w http.ResponseWriter, r *http.Request) {
	m := s.mail()
	domain := mailDomain(r.URL.Query().Get("emailaddress"))
	if domain == "" {
		domain = mailDomain("@" + strings.TrimPrefix(hostOnly(r.Host), "autoconfig."))
	}
	cc := clientConfig{Version: "1.1", Provider: emailProvider{
		ID: domain, Domain: domain, DisplayName: domain + " mail", ShortName: domain,
		Incoming: []acServer{{Type: "imap", Hostname: m.IMAPHost, Port: m.IMAPPort, SocketType: socketType(m.IMAPSecurity),
			Authentication: "password-cleartext", Username: "%EMAILADDRESS%"}},
		Outgoing: acServer{Type: "smtp", Hostname: m.SMTPHost, Port: m.SMTPPort, SocketType: socketType(m.SMTPSecurity),
			Authentication: "password-cleartext", Username: "%EMAILADDRESS%"},
		Documentation: &acDocumentn{URL: s.BaseURL, Descr: "Sign in to create an app password for this client."},
	}}
	if m.POP3 {
		cc.Provider.Incoming = append(cc.Provider.Incoming, acServer{Type: "pop3", Hostname: m.POP3Host, Port: m.POP3Port,
			SocketType: socketType(m.POP3Security), Authentication: "password-cleartext", Username: "%EMAILADDRESS%"})
	}
	writeXML(w, "application/xml", cc)
}

// Outlook Autodiscover, plain old XML (POX) with the 2006a response schema.
const (
	adResponseNS      = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	adOutlookSchemaNS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

type adRequest struct {
	EMailAddress string `xml:"Request>EMailAddress"`
	Schema       string `xml:"Request>AcceptableResponseSchema"`
}

type adResponse struct {
	XMLName  xml.Name `xml:"Autodiscover"`
	XMLNS    string   `xml:"xmlns,attr"`
	Response struct {
		XMLNS   string `xml:"xmlns,attr"`
		Account struct {
			AccountType string       `xml:"AccountType"`
			Action      string       `xml:"Action"`
			Protocols   []adProtocol `xml:"Protocol"`
		} `xml:"Account"`
	} `xml:"Response"`
}

type adProtocol struct {
	Type           string `xml:"Type"`
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	LoginName      string `xml:"LoginName"`
	DomainRequired string `xml:"DomainRequired"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	Encryption     string `xml:"Encryption"`
	AuthRequired   string `xml:"AuthRequired"`
}

// adSecurity is the POX SSL and Encryption elements for sec. Encryption
// (None, SSL, TLS or Auto) overrides SSL in Outlook; both say the same
// for older clients.
func adSecurity(sec Security) (ssl, encryption string) {
	switch sec {
	case SecuritySTARTTLS:
		return "on", "TLS" // Autodiscover's name for STARTTLS
	case SecurityNone:
		return "off", "None"
	}
	return "on", "SSL"
}

// autodiscover answers Outlook's POX request with IMAP, SMTP and, if on,
// POP3 settings.
func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req adRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
	if err != nil || xml.Unmarshal(body, &req) != nil || req.EMailAddress == "" {
		http.Error(w, "expected an Autodiscover request with an EMailAddress", http.StatusBadRequest)
		return
	}
	m := s.mail()
	var resp adResponse
	resp.XMLNS, resp.Response.XMLNS = adResponseNS, adOutlookSchemaNS
	a := &resp.Response.Account
	a.AccountType, a.Action = "email", "settings"
	login := strings.TrimSpace(req.EMailAddress)
	proto := func(typ, host string, port int, sec Security) adProtocol {
		ssl, enc := adSecurity(sec)
		return adProtocol{Type: typ, Server: host, Port: port, LoginName: login, DomainRequired: "off", SPA: "off",
			SSL: ssl, Encryption: enc, AuthRequired: "on"}
	}
	a.Protocols = []adProtocol{
		proto("IMAP", m.IMAPHost, m.IMAPPort, m.IMAPSecurity),
		proto("SMTP", m.SMTPHost, m.SMTPPort, m.SMTPSecurity),
	}
	if m.POP3 {
		a.Protocols = append(a.Protocols, proto("POP3", m.POP3Host, m.POP3Port, m.POP3Security))
	}
	writeXML(w, "text/xml", resp)
}

func writeXML(w http.ResponseWriter, contentType string, v any) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)+1))
	io.WriteString(w, xml.Header)
	w.Write(b)
	io.WriteString(w, "\n")
}

// mailDomain returns the lower-cased domain of an address, or "" if there
// is none or it is not a plain DNS name.
func mailDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	d := strings.ToLower(addr[i+1:])
	if d == "" || len(d) > 253 {
		return ""
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return ""
		}
	}
	return d
}

// hostOnly strips the port from a Host header.
func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		return host[:i]
	}
	return strings.Trim(host, "[]")
}
