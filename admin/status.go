package admin

import (
	"encoding/json"
	"math"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// Status is the server at a glance, for the status page (GET /status). It
// is read from the metrics the Gatherer holds, so it always agrees with
// /metrics; a figure whose series is missing is 0 (the version "").
type Status struct {
	Version   string    `json:"version"`    // wharf_build_info's version label
	GoVersion string    `json:"go_version"` // and its goversion label
	Started   time.Time `json:"started"`    // process_start_time_seconds; zero when unknown
	Uptime    float64   `json:"uptime_seconds"`
	Sessions  int64     `json:"sessions"`    // wharf_sessions
	Bans      int64     `json:"bans_active"` // wharf_bans_active
	Totals    Totals    `json:"totals"`
}

// Totals are the counters since the server started.
type Totals struct {
	Downloads       int64 `json:"downloads"` // wharf_transfers_total, complete or not
	Uploads         int64 `json:"uploads"`
	BytesDownloaded int64 `json:"bytes_downloaded"` // wharf_transfer_bytes_total, counted as bytes flow
	BytesUploaded   int64 `json:"bytes_uploaded"`
	Logins          int64 `json:"logins"` // wharf_logins_total{result="success"}
	FailedLogins    int64 `json:"failed_logins"`
	RefusedCommands int64 `json:"refused_commands"` // wharf_commands_refused_total, every reason
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{}
	if s.opts.Gatherer != nil {
		families, err := s.opts.Gatherer.Gather()
		if err != nil {
			s.log.Debug("gather for /status", zap.Error(err)) // what could be gathered is still shown
		}

		st = statusOf(families, time.Now())
	}

	w.Header().Set("Content-Type", "application/json")

	if err := json.NewEncoder(w).Encode(st); err != nil {
		s.log.Debug("write /status", zap.Error(err))
	}
}

// statusOf reads a Status from gathered metric families.
func statusOf(families []*dto.MetricFamily, now time.Time) Status {
	var st Status

	for _, f := range families {
		for _, m := range f.GetMetric() {
			n := int64(math.Round(value(m)))

			switch f.GetName() {
			case "wharf_build_info":
				st.Version, st.GoVersion = label(m, "version"), label(m, "goversion")
			case "process_start_time_seconds":
				sec, frac := math.Modf(value(m))
				st.Started = time.Unix(int64(sec), int64(frac*1e9)).UTC()
				st.Uptime = math.Max(0, now.Sub(st.Started).Seconds())
			case "wharf_sessions":
				st.Sessions = n
			case "wharf_bans_active":
				st.Bans = n
			case "wharf_transfers_total":
				add(label(m, "direction"), n, &st.Totals.Downloads, &st.Totals.Uploads)
			case "wharf_transfer_bytes_total":
				add(label(m, "direction"), n, &st.Totals.BytesDownloaded, &st.Totals.BytesUploaded)
			case "wharf_logins_total":
				switch label(m, "result") {
				case "success":
					st.Totals.Logins += n
				case "failure":
					st.Totals.FailedLogins += n
				}
			case "wharf_commands_refused_total":
				st.Totals.RefusedCommands += n
			}
		}
	}

	return st
}

// add adds n to down or up, as direction says.
func add(direction string, n int64, down, up *int64) {
	switch direction {
	case "download":
		*down += n
	case "upload":
		*up += n
	}
}

// value is a counter's, a gauge's or an untyped metric's value.
func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}

	return 0
}

// label is the value of m's label name, "" when it has none.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}

	return ""
}
