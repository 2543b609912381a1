package portal

import (
	"bytes"
	"embed"
	"github.com/passgate/passgate/authn/account"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/passgate/passgate/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// page is what every template gets.
type page struct {
	Title string
	User  string // signed-in user; "" hides the navigation
	Admin bool
	Nav   string // the current navigation item
	Flash string
	Error string
	Data  any
	// SignInWith is the OIDC sign-in button's text ("" without OIDC) and
	// Mailbox shows the mailbox link page in the navigation; render sets
	// both from the Server (oidc.go, link.go).
	SignInWith string
	Mailbox    bool
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02")
	},
	"scopes": func(sc []store.Scope) string {
		var names []string
		for _, s := range sc {
			names = append(names, strings.ToUpper(string(s)))
		}
		return strings.Join(names, ", ")
	},
	"groups":      func(s string) []string { return strings.Fields(s) },
	"fingerprint": fingerprint,
	"policy":      policyLabel,
	"policies":    func() any { return policyLabels },
	"path":        url.PathEscape,
	"outcome": func(rec store.AuditRecord) string {
		if rec.Protocol == string(ProtocolPortal) && rec.Result == "primary-refused-mfa" {
			return "password ok, code asked"
		}
		if rec.Result == account.ResultAppPasswordRetireWarning && !rec.RemovalOn.IsZero() {
			return "unused: will be removed on " + rec.RemovalOn.Format(time.DateOnly) + " unless used"
		}
		if text, ok := outcomes[rec.Result]; ok {
			return text
		}
		return rec.Result
	},
}

// outcomes are the audit results as users read them.
var outcomes = map[string]string{
	"bad-secret":                           "wrong password",
	"unknown-user":                         "unknown user",
	"disabled":                             "refused: account disabled",
	"primary-refused-mfa":                  "refused: account password, an app password is needed",
	"scope-denied":                         "refused: app password not allowed for this",
	"expired":                              "refused: app password expired",
	"address-denied":                       "refused: not allowed from this address",
	"rate-limited":                         "refused: too many failed attempts",
	"upstream-error":                       "mail server unavailable",
	"auth-error":                           "temporary failure",
	"bad-code":                             "wrong code",
	"mfa-enrolled":                         "authenticator set up",
	"mfa-replaced":                         "authenticator replaced",
	"app-password-created":                 "app password created",
	"app-password-revoked":                 "app password revoked",
	account.ResultAppPasswordRetireWarning: "unused: will be removed unless used",
	account.ResultAppPasswordRetired:       "removed: unused too long",
	"password-changed":                     "password changed",
	"delete-app-passwords":                 "all app passwords deleted",
	"require-mfa":                          "MFA required",
	"reset-mfa":                            "MFA reset",
	"mfa-off":                              "MFA no longer required",
	"disable":                              "account disabled",
	"enable":                               "account enabled",
	"user-created":                         "account created",
	"admin-on":                             "made an administrator",
	"admin-off":                            "no longer an administrator",
	"alias-added":                          "sender alias added",
	"alias-removed":                        "sender alias removed",
	"mailbox-linked":                       "mailbox linked",
	"mailbox-unlinked":                     "mailbox unlinked",
	account.ResultLanguageSet:              "notification language set",
	resultIdPMFAMissing:                    "refused: no two-step verification at the sign-in service",
	"device-first-use":                     "first use: device recorded",
	"device-drift":                         "used from another device",
	"device-refused":                       "refused: another device",
	account.ResultDeviceAccepted:           "new device accepted",
	account.ResultDevicePolicy:             "device setting changed",
}

// pages are the parsed templates, by file name.
var pages = mustParsePages()

func mustParsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := make(map[string]*template.Template)
	for _, n := range names {
		name := strings.TrimPrefix(n, "templates/")
		if name == "layout.html" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
	}
	return out
}

// render writes page name with status. A template error is a bug: it is
// logged and answered with 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.SignInWith, p.Mailbox = s.signInLabel(), s.Link != nil
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.logger().ErrorContext(r.Context(), "portal: template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageFor starts a page for a signed-in request, taking its flash message.
func (s *Server) pageFor(r *http.Request, rc *reqCtx, title, nav string) page {
	p := page{Title: title, Nav: nav}
	if rc != nil && rc.stage == stageFull {
		p.User, p.Admin = rc.acct.Username, rc.acct.Admin
		p.Flash = s.popFlash(r.Context(), rc)
	}
	return p
}

// renderError answers with a page that explains what went wrong.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, title, msg string) {
	p := s.pageFor(r, rc, title, "")
	p.Data = msg
	s.render(w, r, status, "error.html", p)
}

// unavailable logs a store failure and answers 503.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.logger().ErrorContext(r.Context(), "portal: store failed", "path", r.URL.Path, "err", err)
	s.renderError(w, r, nil, http.StatusServiceUnavailable, "Temporarily unavailable",
		"The service is temporarily unavailable. Please try again in a minute.")
}

// crossOriginRefused is the CrossOriginProtection deny handler.
func (s *Server) crossOriginRefused(w http.ResponseWriter, r *http.Request) {
	s.logger().WarnContext(r.Context(), "portal: cross-origin request refused", "path", r.URL.Path,
		"remote", s.remoteAddr(r).Addr().String())
	s.renderError(w, r, nil, http.StatusForbidden, "Request refused",
		"This request came from another web site, so it was refused. Open the portal directly and try again.")
}

// staticHandler serves the embedded CSS and JavaScript.
func staticHandler() http.Handler {
	fsys, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// home sends the browser where its session continues.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	rc, err := s.loadSession(r)
	if err != nil {
		s.redirect(w, r, "/signin")
		return
	}
	s.redirect(w, r, stageHome(rc.stage))
}

// form parses a POST body of at most maxForm bytes.
func form(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	return r.ParseForm()
}
