package portal

import (
	"context"
	"net/http"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/notify"
	"github.com/passgate/passgate/store"
)

// languageNames are the notification languages as the account page
// offers them.
var languageNames = map[string]string{"en": "English", "fr": "Français"}

// rememberLanguage gives an account that has no notification language the
// one its browser asks for (Accept-Language), at a full sign-in. A
// failure only logs: the sign-in goes on.
func (s *Server) rememberLanguage(ctx context.Context, r *http.Request, acct store.Account) {
	if acct.Language != "" {
		return
	}
	lang := notify.Match(r.Header.Get("Accept-Language"))
	if lang == "" {
		return
	}
	who := account.Actor{Door: account.DoorPortal, Name: acct.Username, Remote: s.remoteAddr(r), Client: userAgent(r)}
	if err := s.accounts().SetLanguage(ctx, who, acct.Username, lang); err != nil {
		s.logger().WarnContext(ctx, "portal: language not saved", "user", acct.Username, "err", err)
	}
}

// setLanguage changes the account's notification language (account page).
func (s *Server) setLanguage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := form(w, r); err != nil {
		s.renderError(w, r, rc, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	lang := r.PostFormValue("language")
	if !notify.Supported(lang) {
		s.renderAccount(w, r, rc, http.StatusUnprocessableEntity, "Choose one of the languages offered.")
		return
	}
	if err := s.accounts().SetLanguage(r.Context(), s.actor(r, rc), rc.acct.Username, lang); err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.setFlash(r.Context(), rc, "Notifications will be written in "+languageNames[lang]+".")
	s.redirect(w, r, "/account")
}

// languageChoices are the options of the account page's language form.
type languageChoice struct {
	Tag, Name string
	Selected  bool
}

func languageChoices(current string) []languageChoice {
	out := make([]languageChoice, 0, len(notify.Languages))
	for _, l := range notify.Languages {
		out = append(out, languageChoice{Tag: l, Name: languageNames[l], Selected: l == current})
	}
	return out
}
