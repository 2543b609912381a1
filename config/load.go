package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, parses and validates the configuration file at path.
// Relative paths inside it are resolved against its directory, and secrets
// may be overridden from the process environment (see Upstream.MasterSecret).
// Problems are *Error values naming the file, line and key.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := parse(path, data, filepath.Dir(abs), os.Getenv)
	if err != nil {
		return nil, err
	}
	c.File = abs
	return c, nil
}

// Parse parses and validates a configuration file's content. dir is the
// directory that relative paths are resolved against (the file's
// directory; "" leaves them relative to the working directory). env looks
// up environment overrides: os.Getenv in production, a map lookup in tests;
// nil means no overrides. Files named in data (certificates, CA bundle,
// master secret file) are read. Problems are *Error values naming the line
// and key.
func Parse(data []byte, dir string, env func(string) string) (*Config, error) {
	return parse("", data, dir, env)
}

// loader carries what validation needs and collects its errors, so that
// one run reports every problem of the file, not only the first.
type loader struct {
	file string // for Error.File
	data string
	dir  string
	env  func(string) string
	errs []error
}

func parse(file string, data []byte, dir string, env func(string) string) (*Config, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	l := &loader{file: file, data: string(data), dir: dir, env: env}
	var c Config
	md, err := toml.Decode(l.data, &c)
	if err != nil {
		e := decodeError(l.data, err)
		e.File = file
		return nil, e
	}
	l.unknownKeys(md)
	if len(l.errs) > 0 {
		// A misspelt key would only cause confusing follow-up errors.
		return nil, errors.Join(l.errs...)
	}
	l.check(&c)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return &c, nil
}

// unknownKeys reports keys that match no field. Under an unknown table only
// the table itself is reported.
func (l *loader) unknownKeys(md toml.MetaData) {
	undecoded := md.Undecoded()
	set := make(map[string]bool, len(undecoded))
	for _, k := range undecoded {
		set[k.String()] = true
	}
next:
	for _, k := range undecoded {
		for n := 1; n < len(k); n++ {
			if set[k[:n].String()] {
				continue next
			}
		}
		l.failAt(k, nil, "unknown key")
	}
}

// fail records a problem with the dotted key (whose parts contain no dots).
func (l *loader) fail(key string, cause error, format string, args ...any) {
	l.failAt(strings.Split(key, "."), cause, format, args...)
}

// failAt records a problem with key, located at its line (or its table's).
func (l *loader) failAt(key toml.Key, cause error, format string, args ...any) {
	l.errs = append(l.errs, &Error{
		File: l.file,
		Line: lineOfNearest(l.data, key),
		Key:  key.String(),
		Msg:  fmt.Sprintf(format, args...),
		Err:  cause,
	})
}

// path resolves a path from the file against the file's directory.
func (l *loader) path(p string) string {
	if p == "" || filepath.IsAbs(p) || l.dir == "" {
		return p
	}
	return filepath.Join(l.dir, p)
}

// Size limits of the files that the configuration names.
const (
	maxPEMFile    = 4 << 20 // a CA bundle; the system one is a few hundred KiB
	maxSecretFile = 64 << 10
)

// readFile reads a regular file of at most max bytes. Devices, FIFOs and
// directories are refused: reading them could block or never end.
// Errors name the path, never the content.
func readFile(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, pathErr(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, pathErr(err))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, max)
	}
	return b, nil
}

// pathErr strips the *fs.PathError wrapper, whose text would repeat the path.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
