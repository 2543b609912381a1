package main

import (
	"flag"
	"io"
)

// parseFlags parses args with fs, accepting flags before, between and after
// positional arguments (the flag package stops at the first positional one),
// and returns the positional arguments. "--" ends flag parsing.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		// fs.Parse stopped at a positional argument: keep it, parse on.
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlags returns a flag set with the --config flag every command has.
// Each (sub)command makes its own, so that a flag it does not take is an
// error that names the flag.
func newFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg := fs.String("config", "passgate.toml", "configuration file")
	return fs, cfg
}
