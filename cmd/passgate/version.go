package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..."; when it
// is not, versionText reads the module's build info instead.
var version = ""

// versionText is what `passgate version` prints after "passgate ": the
// -X version if one was linked in, else the module version and the VCS
// revision and time that `go build` stamps (debug.ReadBuildInfo), else
// "dev".
func versionText(linked string, bi *debug.BuildInfo, ok bool) string {
	if linked != "" {
		return linked
	}
	if !ok || bi == nil {
		return "dev"
	}
	var parts []string
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		parts = append(parts, v)
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "-dirty"
		}
		parts = append(parts, "rev "+rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	if len(parts) == 0 {
		parts = append(parts, "dev")
	}
	return strings.Join(parts, " ") + " (" + bi.GoVersion + ")"
}

// buildVersion is versionText of this binary.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	return versionText(version, bi, ok)
}

// metricsVersion is buildVersion without the Go version, which
// passgate_build_info carries in a label of its own.
func metricsVersion() string {
	return strings.TrimSuffix(buildVersion(), " ("+runtime.Version()+")")
}
