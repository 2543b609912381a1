package sieve

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy"
)

// FuzzSievePreauth feeds arbitrary bytes to the non-authenticated state
// (its parser of atoms, quoted strings and literals included) as one
// client session: the server must neither panic nor hang nor log an
// error.
func FuzzSievePreauth(f *testing.F) {
	ir := plain("", lt.AppUser, lt.AppSecret)
	for _, s := range []string{
		"CAPABILITY\r\nNOOP \"tag\"\r\nLOGOUT\r\n",
		`AUTHENTICATE "PLAIN" "` + ir + "\"\r\nLISTSCRIPTS\r\n",
		fmt.Sprintf("AUTHENTICATE \"PLAIN\" {%d+}\r\n%s\r\n", len(ir), ir),
		"AUTHENTICATE \"LOGIN\"\r\n\"*\"\r\nAUTHENTICATE \"LOGIN\"\r\n{3}\r\nabc\r\n",
		"STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"\"unterminated\r\n{-1}\r\n{99999999999999999999}\r\n\"a\\\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, session []byte) {
		up := &lt.Upstream{Discard: true}
		errs := &lt.ErrorWatch{}
		srv := &Server{Auth: &lt.Auth{}, Upstream: up, TLSConfig: testcert.ServerConfig(), AllowCleartext: true,
			Limits: proxy.Limits{PreauthTimeout: 5 * time.Second, MaxLine: 256, MaxLiteral: 64, MaxFailedLogins: 3},
			Logger: slog.New(errs)}
		lt.FuzzSession(t, srv, up, errs, session)
	})
}
