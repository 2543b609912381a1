package bolt_test

import (
	"testing"

	"github.com/passgate/passgate/store"
	"github.com/passgate/passgate/store/bolt"
	"github.com/passgate/passgate/store/storetest"
)

func TestImportLookupKey(t *testing.T) {
	storetest.RunImportLookupKey(t, storetest.Opener{
		New: func(t *testing.T) store.Store { return newDB(t) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			db := s.(*bolt.DB)
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, db.Path(), bolt.Options{})
		},
	})
}
