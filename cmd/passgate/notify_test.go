package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/passgate/passgate/internal/demomail"
)

// serve with [notify] tells the owner of an app password created through
// the control socket: by mail into their INBOX on the SMTP upstream (the
// demo's mail server), and by a signed webhook.
func TestServeNotifies(t *testing.T) {
	mail, err := demomail.Start("m", "master-secret-value", []string{"carol@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer mail.Close()
	hooks := make(chan map[string]any, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("hook-secret"))
		mac.Write([]byte(r.Header.Get("X-Passgate-Timestamp") + "." + string(body)))
		if r.Header.Get("X-Passgate-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("webhook signature %q does not verify", r.Header.Get("X-Passgate-Signature"))
		}
		var p map[string]any
		json.Unmarshal(body, &p)
		hooks <- p
	}))
	defer hook.Close()

	path := testConfig(t)
	appendConfig(t, path, fmt.Sprintf(`[smtp]
listen = "127.0.0.1:0"
allow_cleartext = true
[smtp.upstream]
address = %q
login = "master"
master_user = "m"
master_secret = "master-secret-value"
[notify]
from = "passgate@example.org"
webhook_url = %q
webhook_secret = "hook-secret"
language = "fr"
`, mail.SMTPAddr(), hook.URL))
	startServe(t, path)
	mustCLI(t, "", "user", "add", "carol@example.org", "--config", path)
	mustCLI(t, "", "apppass", "create", "carol@example.org", "--name", "Agenda", "--config", path)

	select {
	case p := <-hooks:
		if p["event"] != "app-password-created" || p["username"] != "carol@example.org" || p["language"] != "fr" ||
			!strings.Contains(p["subject"].(string), "Agenda") {
			t.Errorf("webhook payload %v", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook within 30 s")
	}
	if subject := waitSubject(t, mail.IMAPAddr().String(), "carol@example.org*m", "Agenda"); !strings.Contains(subject, "Nouveau mot de passe d'application") {
		t.Errorf("notification subject %q, want the French one", subject)
	}
}

// waitSubject polls an INBOX until a message whose subject holds want
// arrives, and returns that subject.
func waitSubject(t *testing.T, addr, login, want string) string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(login, "master-secret-value").Wait(); err != nil {
		t.Fatalf("login to the demo mail server: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1, sel.NumMessages), &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Envelope != nil && strings.Contains(m.Envelope.Subject, want) {
				return m.Envelope.Subject
			}
		}
	}
	t.Fatalf("no message about %q in the INBOX within 30 s", want)
	return ""
}
