package pop3

import (
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	lt "github.com/passgate/passgate/internal/linetest"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy"
)

// FuzzPOP3Preauth feeds arbitrary bytes to the AUTHORIZATION state as one
// client session: the server must neither panic (recoverPanic logs it
// at level Error, which the test watches) nor hang.
func FuzzPOP3Preauth(f *testing.F) {
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + lt.AppUser + "\x00" + lt.AppSecret))
	for _, s := range []string{
		"CAPA\r\nQUIT\r\n",
		"USER " + lt.AppUser + "\r\nPASS " + lt.AppSecret + "\r\nSTAT\r\n",
		"AUTH PLAIN " + plain + "\r\nRETR 1\r\n",
		"AUTH PLAIN\r\n" + plain + "\r\n",
		"AUTH LOGIN\r\n*\r\nAUTH LOGIN YWxpY2U=\r\n!!\r\n",
		"STLS\r\n\x16\x03\x01\x00\x05hello",
		"APOP a b\r\nPASS\r\nUSER\r\nAUTH\r\n\x00\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, session []byte) {
		up := &lt.Upstream{Text: "Logged in.", Discard: true}
		errs := &lt.ErrorWatch{}
		srv := &Server{Auth: &lt.Auth{}, Upstream: up, TLSConfig: testcert.ServerConfig(), AllowCleartext: true,
			Limits: proxy.Limits{PreauthTimeout: 5 * time.Second, MaxLine: 256, MaxFailedLogins: 3},
			Logger: slog.New(errs)}
		lt.FuzzSession(t, srv, up, errs, session)
	})
}
