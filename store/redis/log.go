package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// SetLibraryLogger sends go-redis's own messages (failed dials, Pub/Sub
// reconnections), which otherwise go to standard error through the log
// package, to log at debug level: while Redis is down every call adds one,
// and the Store's callers already see store.ErrUnavailable. It changes
// go-redis's logger for the whole process: call it once, from main.
func SetLibraryLogger(log *slog.Logger) {
	goredis.SetLogger(libraryLogger{log})
}

// libraryLogger adapts *slog.Logger to go-redis's logging interface.
type libraryLogger struct{ log *slog.Logger }

func (l libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
