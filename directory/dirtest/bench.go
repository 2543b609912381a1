package dirtest

import (
	"context"
	"errors"
	"testing"

	"github.com/passgate/passgate/directory"
)

// Bench measures Authenticate (right password, wrong password of a known
// user, an unknown user) and Lookup of f.Dir, as sub-benchmarks whose
// ns/op is the time of one call. Results are reported, never asserted.
func Bench(b *testing.B, f Fixture) {
	ctx := context.Background()
	run := func(name string, call func() error, ok func(error) bool) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := call(); !ok(err) {
					b.Fatalf("%s: %v", name, err)
				}
			}
		})
	}
	is := func(target error) func(error) bool {
		return func(err error) bool { return errors.Is(err, target) }
	}
	run("Authenticate/right", func() error {
		_, err := f.Dir.Authenticate(ctx, f.Plain.Name, f.Plain.Password)
		return err
	}, func(err error) bool { return err == nil })
	run("Authenticate/wrong", func() error {
		_, err := f.Dir.Authenticate(ctx, f.Plain.Name, "wrong-password")
		return err
	}, is(directory.ErrBadPassword))
	run("Authenticate/unknown", func() error {
		_, err := f.Dir.Authenticate(ctx, f.Unknown, "wrong-password")
		return err
	}, func(err error) bool {
		return errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrBadPassword)
	})
	if f.NoLookup {
		return
	}
	run("Lookup", func() error {
		_, err := f.Dir.Lookup(ctx, f.Plain.Name)
		return err
	}, func(err error) bool { return err == nil })
}
