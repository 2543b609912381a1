package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestMasterSecretSources(t *testing.T) {
	const (
		specific = "PASSGATE_IMAP_UPSTREAM_MASTER_SECRET"
		generic  = "PASSGATE_UPSTREAM_MASTER_SECRET"
	)
	dir := fixture(t)
	fromFile := withBase(`master_secret = "s3cret"`, `master_secret_file = "master-secret"`)
	missingFile := withBase(`master_secret = "s3cret"`, `master_secret_file = "nope"`)
	noSecret := withBase(`master_secret = "s3cret"`, ``)
	tests := []struct {
		name     string
		data     string
		env      map[string]string
		want     string
		wantFrom string
	}{
		{"inline", base, nil, "s3cret", "imap.upstream.master_secret"},
		{"file", fromFile, nil, "from-file", "file " + filepath.Join(dir, "master-secret")},
		{"specific env over inline", base, map[string]string{specific: "env-1", generic: "env-2"}, "env-1", "env " + specific},
		{"generic env when specific unset", base, map[string]string{generic: "env-2"}, "env-2", "env " + generic},
		{"empty env counts as unset", base, map[string]string{specific: "", generic: ""}, "s3cret", "imap.upstream.master_secret"},
		{"env over file", fromFile, map[string]string{specific: "env-1"}, "env-1", "env " + specific},
		{"env means the file is not read", missingFile, map[string]string{generic: "env-2"}, "env-2", "env " + generic},
		{"env alone", noSecret, map[string]string{specific: "env-1"}, "env-1", "env " + specific},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), dir, envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			u := c.IMAP.Upstream
			if u.MasterSecret != tt.want || u.MasterSecretFrom != tt.wantFrom {
				t.Errorf("secret %q from %q, want %q from %q", u.MasterSecret, u.MasterSecretFrom, tt.want, tt.wantFrom)
			}
		})
	}
}

func TestSecretEnvNames(t *testing.T) {
	got := secretEnv("smtp.upstream")
	if len(got) != 2 || got[0] != "PASSGATE_SMTP_UPSTREAM_MASTER_SECRET" || got[1] != "PASSGATE_UPSTREAM_MASTER_SECRET" {
		t.Errorf("secretEnv(smtp.upstream) = %q", got)
	}
}

func TestMasterSecretFileTrimming(t *testing.T) {
	tests := []struct{ content, want string }{
		{"pw\n", "pw"},
		{"pw\r\n", "pw"},
		{"pw", "pw"},
		{"pw\n\n", "pw"},
		{" pw \n", " pw "}, // spaces may be part of a secret
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.content, "\n", `\n`), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "secret"), tt.content)
			data := withBase(`master_secret = "s3cret"`, `master_secret_file = "secret"`)
			c, err := Parse([]byte(data), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.IMAP.Upstream.MasterSecret; got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSecretNotInErrors breaks configurations around a secret in every way
// we know and checks that the secret never shows in the error text.
func TestSecretNotInErrors(t *testing.T) {
	const secret = "Hunter2Secret"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "multi"), secret+"\nsecond line\n")
	writeFile(t, filepath.Join(dir, "nul"), secret+"\x00\n")
	secretLine := func(line string) string { return withBase(`master_secret = "s3cret"`, line) }
	tests := []struct {
		name string
		data string
		env  map[string]string
	}{
		{"unquoted", secretLine(`master_secret = ` + secret), nil},
		{"unterminated", secretLine(`master_secret = "` + secret), nil},
		{"bad escape", secretLine(`master_secret = "` + secret + `\q"`), nil},
		{"trailing garbage", secretLine(`master_secret = "x"` + secret), nil},
		{"multi-line string", secretLine(`master_secret = """` + "\n" + secret + `\q"""`), nil},
		{"control character", secretLine(`master_secret = "` + secret + "\x01" + `"`), nil},
		{"array", secretLine(`master_secret = [` + secret + `]`), nil},
		{"wrong type", secretLine(`master_secret = 12` + secret), nil},
		{"line break inline", secretLine(`master_secret = "` + secret + `\nx"`), nil},
		{"line break in file", secretLine(`master_secret_file = "multi"`), nil},
		{"nul in file", secretLine(`master_secret_file = "nul"`), nil},
		{"line break in env", base, map[string]string{"PASSGATE_IMAP_UPSTREAM_MASTER_SECRET": secret + "\r\n"}},
		{"env and other errors", base + lines(`tls = "x"`), map[string]string{"PASSGATE_UPSTREAM_MASTER_SECRET": secret}},
		{"both set", base + lines(`master_secret_file = "multi"`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), dir, envMap(tt.env))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:6]) {
				t.Errorf("error shows the secret: %v", err)
			}
			t.Log(err)
		})
	}
}
