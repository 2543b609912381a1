package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a configuration file. Parse and Load return one
// *Error, or several joined with errors.Join; errors.As finds them.
// Neither Msg nor Err ever contains a secret's content.
type Error struct {
	File string // the file given to Load; "" from Parse
	Line int    // 1-based line of Key (or of its table); 0 when unknown
	Key  string // dotted key, e.g. "imap.upstream.tls"; "" when none applies
	Msg  string // what is wrong
	Err  error  // the cause, for errors.Is (e.g. fs.ErrNotExist); may be nil
}

// Error renders "file:line: key: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// withheld replaces a syntax error message that could quote a secret.
const withheld = "invalid TOML (details withheld: this part of the file holds a secret)"

// typeErrRE matches BurntSushi's type-mismatch errors, which are plain
// strings: `toml: line 3 (last key "imap.listen"): incompatible types: ...`.
var typeErrRE = regexp.MustCompile(`(?s)^toml: (?:line (\d+) )?\(last key "(.*)"\): (.*)$`)

// decodeError turns an error of toml.Decode into an *Error.
// ParseError covers syntax errors and our UnmarshalText errors (bad
// durations and modes); its message can quote the offending text, so it is
// withheld when the key or the line is about a secret.
func decodeError(data string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if mentionsSecret(pe.LastKey) || mentionsSecret(lineText(data, pe.Position.Line)) {
			msg = withheld
		}
		return &Error{Line: pe.Position.Line, Key: pe.LastKey, Msg: msg}
	}
	if m := typeErrRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Key: m[2], Msg: m[3]}
	}
	return &Error{Msg: err.Error()}
}

// mentionsSecret reports whether s names something secret.
func mentionsSecret(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "secret") || strings.Contains(s, "password")
}

// lineText returns line n (1-based) of data, or "".
func lineText(data string, n int) string {
	lines := strings.SplitN(data, "\n", n+1)
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// lineOf returns the line on which key is defined in data, 0 if it is not
// defined there. The TOML parser knows every key's position but does not
// export it; it reports it in a ParseError, though. So decode data into a
// struct holding only key's path, whose leaf refuses any value: the
// resulting error carries the position. Only called on the error path.
func lineOf(data string, key []string) int {
	if len(key) == 0 {
		return 0
	}
	t := reflect.TypeFor[lineProbe]()
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == "" || strings.ContainsAny(key[i], ",") {
			return 0 // a toml tag cannot name it
		}
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F",
			Type: t,
			Tag:  reflect.StructTag("toml:" + strconv.Quote(key[i])),
		}})
	}
	_, err := toml.Decode(data, reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == errProbe.Error() {
		return pe.Position.Line
	}
	return 0
}

// lineOfNearest is lineOf for key or, if key is not in data, for its
// closest enclosing table that is.
func lineOfNearest(data string, key []string) int {
	for n := len(key); n > 0; n-- {
		if line := lineOf(data, key[:n]); line > 0 {
			return line
		}
	}
	return 0
}

var errProbe = errors.New("passgate config line probe")

// lineProbe refuses every value, so that the decoder reports where it is.
type lineProbe struct{}

// UnmarshalTOML implements toml.Unmarshaler.
func (lineProbe) UnmarshalTOML(any) error { return errProbe }
