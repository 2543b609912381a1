package notify

import (
	"slices"

	"golang.org/x/text/language"
)

// matcher picks among Languages.
var matcher = language.NewMatcher(func() []language.Tag {
	tags := make([]language.Tag, len(Languages))
	for i, l := range Languages {
		tags[i] = language.MustParse(l)
	}
	return tags
}())

// Match returns the tag of Languages that pref asks for: a tag ("fr",
// "fr-CA") or an Accept-Language header ("fr-CH, fr;q=0.9, en;q=0.8");
// "" if pref names none of them.
func Match(pref string) string {
	if pref == "" {
		return ""
	}
	tags, _, err := language.ParseAcceptLanguage(pref)
	if err != nil || len(tags) == 0 {
		return ""
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return ""
	}
	return Languages[i]
}

// Supported reports whether lang is one of Languages.
func Supported(lang string) bool { return slices.Contains(Languages, lang) }
