package migrate_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/migrate"
)

// TestRunTwice copies one bolt file into another: the first run copies the
// key, the account, its app password and audit; the second changes nothing.
// (cmd/passgate's migrate tests cover Redis destinations and the command.)
func TestRunTwice(t *testing.T) {
	ctx := t.Context()
	open := func(name string) *bolt.DB {
		db, err := bolt.Open(filepath.Join(t.TempDir(), name), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	src, dst := open("src.db"), open("dst.db")
	now := time.Now().UTC().Truncate(time.Second)
	const user = "alice@example.org"
	if err := src.CreateAccount(ctx, store.Account{Username: user, MFA: true, Created: now}); err != nil {
		t.Fatal(err)
	}
	tag := []byte("tag-under-the-source-key")
	if err := src.CreateAppPassword(ctx, store.AppPassword{ID: "p1", Username: user, Name: "Phone",
		Verifier: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", Tag: tag, Scopes: store.AllScopes, Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := src.AppendAudit(ctx, store.AuditRecord{Time: now, Protocol: "imap", Username: user, Result: "ok"}); err != nil {
		t.Fatal(err)
	}

	c, err := migrate.Run(ctx, src, dst, migrate.Options{Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.LookupKey != migrate.KeyAdopted || c.Accounts.Created != 1 || c.AppPasswords.Created != 1 || c.Audit.Copied != 1 {
		t.Fatalf("first run: %+v", c)
	}
	srcKey, _ := src.LookupKey(ctx)
	dstKey, _ := dst.LookupKey(ctx)
	if string(srcKey) != string(dstKey) {
		t.Fatal("the destination did not adopt the source's lookup key")
	}
	if p, err := dst.FindAppPassword(ctx, user, tag); err != nil || p.ID != "p1" {
		t.Fatalf("app password in the destination: %+v, %v", p, err)
	}

	c, err = migrate.Run(ctx, src, dst, migrate.Options{Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Accounts.Unchanged != 1 || c.AppPasswords.Present != 1 || c.Audit.Skipped != 1 ||
		c.Accounts.Created+c.Accounts.Updated+c.AppPasswords.Created+c.Audit.Copied != 0 {
		t.Fatalf("second run changed something: %+v", c)
	}
}
