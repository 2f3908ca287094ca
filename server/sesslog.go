package server

import (
	"slices"

	"go.uber.org/zap"
)

// sessionLog logs for one session: the server's logger plus the session's
// fixed fields, passed with each line. Unlike zap's With, it clones no
// encoder: that costs an allocation and a KiB buffer per logger, on the path
// of every connection, login and transfer.
type sessionLog struct {
	log    *zap.Logger
	fields []zap.Field
}

// with returns the log with more fixed fields.
func (l sessionLog) with(fields ...zap.Field) sessionLog {
	return sessionLog{log: l.log, fields: append(slices.Clip(l.fields), fields...)}
}

func (l sessionLog) Info(msg string, fields ...zap.Field) {
	if l.log.Core().Enabled(zap.InfoLevel) {
		l.log.Info(msg, append(slices.Clip(l.fields), fields...)...)
	}
}

func (l sessionLog) Debug(msg string, fields ...zap.Field) {
	if l.log.Core().Enabled(zap.DebugLevel) {
		l.log.Debug(msg, append(slices.Clip(l.fields), fields...)...)
	}
}

func (l sessionLog) Warn(msg string, fields ...zap.Field) {
	l.log.Warn(msg, append(slices.Clip(l.fields), fields...)...)
}

func (l sessionLog) Error(msg string, fields ...zap.Field) {
	l.log.Error(msg, append(slices.Clip(l.fields), fields...)...)
}
