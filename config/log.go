package config

// The values of log.level and log.format; cmd/passgate builds the logger.
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)
