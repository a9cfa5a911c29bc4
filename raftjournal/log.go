package raftjournal

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger returns the hclog.Logger raft, its transport and its snapshot
// store write to: messages below level (default "warn") are dropped, the rest
// go to log at the matching slog level.
func newHCLogger(log *slog.Logger, level string) hclog.Logger {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       lvl,
		Output:      &hclogWriter{log: log},
		DisableTime: true,
	})
}

// hclogWriter turns each line hclog writes ("[WARN]  raft: msg: k=v") into one
// slog record.
type hclogWriter struct{ log *slog.Logger }

func (w *hclogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := strings.TrimSpace(string(line))
		lvl := slog.LevelInfo
		for _, m := range []struct {
			tag string
			lvl slog.Level
		}{{"[ERROR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelInfo},
			{"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug - 4}} {
			if strings.HasPrefix(s, m.tag) {
				lvl, s = m.lvl, strings.TrimSpace(s[len(m.tag):])
				break
			}
		}
		w.log.Log(context.Background(), lvl, s)
	}
	return len(p), nil
}
