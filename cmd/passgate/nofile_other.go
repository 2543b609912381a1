//go:build !unix

package main

func openFileLimit() (soft uint64, ok bool) { return 0, false }
