package portal

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/passgate/passgate/store"
)

// Redirects: the portal only ever sends a browser to a path of its own.
// A target that comes from a request (the admin form's back field) is never
// echoed: adminBack rebuilds it from the parts of a known page, so no
// spelling of another target (//host, /\host, /admin/../\host, %2e%2e,
// tabs, a scheme) survives. redirect then refuses anything that a browser
// could read as another site, as a second line.

// Paths of the admin pages a form may return to.
const (
	adminList     = "/admin"
	adminUserPage = "/admin/users/"
	// maxBack bounds the back field; longer values are not a page the
	// portal wrote.
	maxBack = 1024
)

// adminBack returns the admin page that the form field raw names, rebuilt:
// the user list (with its search, normalised as the list does) or one
// user's page (with a valid username). Anything else is the user list.
func adminBack(raw string) string {
	if len(raw) > maxBack {
		return adminList
	}
	u, err := url.Parse(raw) // refuses control characters and bad escapes
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return adminList
	}
	switch {
	case u.Path == adminList || u.Path == adminList+"/":
		if q := normalizeQuery(u.Query().Get("q")); q != "" {
			return adminList + "?q=" + url.QueryEscape(q)
		}
	case strings.HasPrefix(u.Path, adminUserPage):
		name, err := store.NormalizeUsername(strings.TrimPrefix(u.Path, adminUserPage))
		if err == nil && name != "." && name != ".." {
			return adminUserPage + url.PathEscape(name)
		}
	}
	return adminList
}

// normalizeQuery is the user list's search as the list reads it.
func normalizeQuery(q string) string { return strings.ToLower(strings.TrimSpace(q)) }

// isLocalPath reports whether a browser reads target as a path of this
// origin: it starts with one "/" (not "//" or "/\", which browsers read as
// another host) and has no backslash or control character (which browsers
// drop or turn into "/"), and it parses as a URL of no other host.
func isLocalPath(target string) bool {
	if target == "" || target[0] != '/' || strings.HasPrefix(target, "//") || strings.HasPrefix(target, `/\`) {
		return false
	}
	if strings.ContainsFunc(target, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(target)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

// redirect answers with 303 See Other (after a POST the browser GETs) to a
// path of the portal. A target that is not one is a bug: it is logged and
// replaced by "/", never followed.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, target string) {
	if !isLocalPath(target) {
		s.logger().ErrorContext(r.Context(), "portal: refused a redirect off the portal", "path", r.URL.Path)
		target = "/"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}
