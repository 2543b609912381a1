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

// parseArgs is parseFlags, then a check of the number of positional
// arguments: exactly n, or with n < 0 one or more; want names them in the
// error ("exactly one USER"). A command that takes none (n == 0) names the
// argument it did not expect.
func parseArgs(fs *flag.FlagSet, args []string, n int, want string) ([]string, error) {
	pos, err := parseFlags(fs, args)
	switch {
	case err != nil:
		return nil, err
	case n == 0 && len(pos) > 0:
		return nil, usagef("%s: unexpected argument %q", fs.Name(), pos[0])
	case n < 0 && len(pos) == 0, n > 0 && len(pos) != n:
		return nil, usagef("%s: want %s", fs.Name(), want)
	}
	return pos, nil
}
