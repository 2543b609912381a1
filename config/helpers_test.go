package config

import (
	"encoding"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testcert"
)

// base is a minimal valid configuration; cases append sections after it, so
// their lines start at 8.
var base = lines(
	`[imap]`,
	`listen = "127.0.0.1:0"`,
	`allow_cleartext = true`,
	`[imap.upstream]`,
	`address = "127.0.0.1:143"`,
	`master_user = "proxy"`,
	`master_secret = "s3cret"`,
)

func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// fixture is a directory with the files that test configurations name:
// cert.pem + key.pem (a pair), other/key.pem (another key), ca.pem,
// master-secret ("from-file\n"), empty-secret ("\n"), not-pem.txt.
func fixture(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	certFile, _ := testcert.Write(t, dir, "")
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	testcert.Write(t, other, "")
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ca.pem"), string(pemBytes))
	writeFile(t, filepath.Join(dir, "master-secret"), "from-file\n")
	writeFile(t, filepath.Join(dir, "empty-secret"), "\n")
	writeFile(t, filepath.Join(dir, "not-pem.txt"), "hello\n")
	return dir
}

// envMap turns a map into Parse's env function.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// configErrors flattens the *Error values in err (one, or joined).
func configErrors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// errorFor returns the *Error about key in err, failing the test if none.
func errorFor(t *testing.T, err error, key string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one about %s", key)
	}
	for _, e := range configErrors(err) {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no error about %s in:\n%v", key, err)
	return nil
}

// tomlKeys lists the dotted TOML keys of v's struct type; table reports
// whether the key is a table.
func tomlKeys(v any) (keys []string, table map[string]bool) {
	table = make(map[string]bool)
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(prefix, f.Type) // embedded: its keys belong to this table
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			keys = append(keys, key)
			if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
				table[key] = true
				walk(key+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeOf(v))
	return keys, table
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
