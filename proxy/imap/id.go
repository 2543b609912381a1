package imap

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits from RFC 2971 §3.3.
const (
	maxIDPairs     = 30
	maxClientIDLen = 128 // what we keep of "name/version"
)

// cmdID answers ID (RFC 2971). The client's name and version are kept for
// authn.Attempt.Client; the reply names passgate and nothing more.
//
//	id ::= "ID" SP id-params-list
//	id-params-list ::= "(" #(string SP nstring) ")" / nil
func (c *conn) cmdID(cmd *command) error {
	if err := cmd.sp(); err != nil {
		return err
	}
	fields, err := cmd.idParams()
	if err != nil {
		return err
	}
	if err := cmd.end(); err != nil {
		return err
	}
	if fields != nil {
		c.clientID = clientID(fields["name"], fields["version"])
		c.clientName = clientID(fields["name"], "")
	}
	return c.Write(`* ID ("name" "passgate")`, cmd.tag+" OK ID completed")
}

// idParams parses the ID list; keys are lower-cased. NIL gives nil.
func (cmd *command) idParams() (map[string]string, error) {
	if cmd.nilToken() {
		return nil, nil
	}
	if len(cmd.line) == 0 || cmd.line[0] != '(' {
		return nil, bad("Expected a list or NIL")
	}
	cmd.line = cmd.line[1:]
	fields := make(map[string]string)
	for n := 0; ; n++ {
		if len(cmd.line) > 0 && cmd.line[0] == ')' {
			cmd.line = cmd.line[1:]
			return fields, nil
		}
		if n == maxIDPairs {
			return nil, bad("Too many ID fields")
		}
		if n > 0 {
			if err := cmd.sp(); err != nil {
				return nil, err
			}
		}
		key, err := cmd.string()
		if err != nil {
			return nil, err
		}
		if err := cmd.sp(); err != nil {
			return nil, err
		}
		val, _, err := cmd.nstring()
		if err != nil {
			return nil, err
		}
		fields[strings.ToLower(key)] = val
	}
}

// clientID builds the "name/version" kept for audit, without control
// characters and at most maxClientIDLen bytes.
func clientID(name, version string) string {
	s := name
	if version != "" {
		s += "/" + version
	}
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	for len(s) > maxClientIDLen {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}
