package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// templateFiles are the messages: one file per language with the words
// of every event (templates/en.tmpl), and one layout per format.
//
//go:embed templates
var templateFiles embed.FS

// Languages are the languages notifications are written in; the first is
// the default.
var Languages = []string{"en", "fr"}

// Message is a notification rendered in one language.
type Message struct {
	Lang    string
	Subject string
	Text    string // text/plain
	HTML    string // text/html
}

// Data is what a notification's templates see. Strings are plain text
// (the HTML layout escapes them).
type Data struct {
	Lang         string
	Event        string
	Username     string
	PasswordName string
	Time         time.Time
	// Device is set on the device events; Client, TLS (its ClientHello
	// fingerprint, as the portal shows it) and Network are what it was
	// seen as, Remote its address and Protocol the door it used.
	Device    bool
	Client    string
	TLS       string
	Network   string
	Remote    string
	Protocol  string
	RemovalOn time.Time
	// PortalURL is where the owner manages app passwords; "" if unknown.
	PortalURL string
}

// compiled are the parsed templates of one language and event.
type compiled struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// templates are the compiled templates, by language and event.
var templates = mustCompile()

func mustCompile() map[string]map[string]compiled {
	out := map[string]map[string]compiled{}
	for _, lang := range Languages {
		words, err := templateFiles.ReadFile("templates/" + lang + ".tmpl")
		if err != nil {
			panic(err)
		}
		out[lang] = map[string]compiled{}
		for _, ev := range Events() {
			out[lang][ev] = mustCompileEvent(lang, ev, string(words))
		}
	}
	return out
}

// mustCompileEvent builds the templates of ev in lang: the layout, the
// language's words, and "event.*" naming ev's own definitions (a template
// name must be a constant).
func mustCompileEvent(lang, ev, words string) compiled {
	alias := fmt.Sprintf(`{{define "event.subject"}}{{template %[1]q .}}{{end}}`+
		`{{define "event.body"}}{{template %[2]q .}}{{end}}{{define "event.after"}}{{template %[3]q .}}{{end}}`,
		ev+".subject", ev+".body", ev+".after")
	fm := funcs(lang)
	text := texttemplate.Must(texttemplate.New("layout.txt").Funcs(texttemplate.FuncMap(fm)).
		ParseFS(templateFiles, "templates/layout.txt"))
	texttemplate.Must(text.New("words").Parse(words))
	texttemplate.Must(text.New("alias").Parse(alias))
	html := htmltemplate.Must(htmltemplate.New("layout.html").Funcs(htmltemplate.FuncMap(fm)).
		ParseFS(templateFiles, "templates/layout.html"))
	htmltemplate.Must(html.New("words").Parse(words))
	htmltemplate.Must(html.New("alias").Parse(alias))
	return compiled{text: text, html: html}
}

// Render writes the notification of d.Event in lang (Languages[0] if lang
// has no templates).
func Render(lang string, d Data) (Message, error) {
	byEvent, ok := templates[lang]
	if !ok {
		lang, byEvent = Languages[0], templates[Languages[0]]
	}
	c, ok := byEvent[d.Event]
	if !ok {
		return Message{}, fmt.Errorf("render notification: no template for %q", d.Event)
	}
	d.Lang = lang
	var subject, text, html bytes.Buffer
	if err := c.text.ExecuteTemplate(&subject, "event.subject", d); err != nil {
		return Message{}, fmt.Errorf("render notification subject: %w", err)
	}
	if err := c.text.ExecuteTemplate(&text, "layout", d); err != nil {
		return Message{}, fmt.Errorf("render notification text: %w", err)
	}
	if err := c.html.ExecuteTemplate(&html, "layout", d); err != nil {
		return Message{}, fmt.Errorf("render notification html: %w", err)
	}
	// A subject is one line (RFC 5322 §2.2: no CR or LF in a field).
	subj := strings.Join(strings.Fields(subject.String()), " ")
	return Message{Lang: lang, Subject: subj, Text: text.String(), HTML: html.String()}, nil
}

// funcs are the template functions of lang: date (a moment) and day (a
// calendar day), both in UTC.
func funcs(lang string) map[string]any {
	if lang == "fr" {
		return map[string]any{"date": dateFR, "day": dayFR}
	}
	return map[string]any{
		"date": func(t time.Time) string { return t.UTC().Format("Monday 2 January 2006 at 15:04 MST") },
		"day":  func(t time.Time) string { return t.UTC().Format("Monday 2 January 2006") },
	}
}

var (
	weekdaysFR = [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	monthsFR   = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet",
		"août", "septembre", "octobre", "novembre", "décembre"}
)

func dayFR(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s %d %s %d", weekdaysFR[t.Weekday()], t.Day(), monthsFR[t.Month()-1], t.Year())
}

func dateFR(t time.Time) string {
	return dayFR(t) + " à " + t.UTC().Format("15:04 MST")
}
