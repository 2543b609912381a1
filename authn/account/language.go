package account

import (
	"context"

	"github.com/passgate/passgate/store"
)

// ResultLanguageSet: the account's notification language changed.
const ResultLanguageSet = "language-set"

// maxLanguage bounds a language tag ("fr", "pt-BR").
const maxLanguage = 16

// SetLanguage sets the language the owner of username reads notifications
// in: a tag such as "fr" (package notify says which it has), or "" for
// the installation's default.
func (s *Service) SetLanguage(ctx context.Context, who Actor, username, lang string) error {
	if !languageTag(lang) {
		return fieldErr("language", nil, "%q is not a language tag such as fr", lang)
	}
	return s.update(ctx, who, username, ResultLanguageSet, func(a *store.Account) error {
		a.Language = lang
		return nil
	})
}

// languageTag reports whether lang looks like a BCP 47 tag: letters,
// digits and dashes, short.
func languageTag(lang string) bool {
	if len(lang) > maxLanguage {
		return false
	}
	for _, r := range lang {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
