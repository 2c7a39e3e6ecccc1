package httpapi

import (
	"log/slog"
	"net/http"
)

// Backend is what the admin API reads from and acts through; the broker implements it
// (internal/broker/httpapi.go).
type Backend interface{}

// APIOptions configures NewAPI.
type APIOptions struct {
	Level  *slog.LevelVar // the log level /api/v1/log/level reads and sets
	Logger *slog.Logger
}

// NewAPI returns the handler of /api/v1/.
func NewAPI(b Backend, opts APIOptions) http.Handler {
	mux := http.NewServeMux()
	return mux
}
