package admin

import (
	"encoding/json"
	"net/http"

	"go.uber.org/zap"
)

// reloadAnswer is the JSON body of POST /reload's answer.
type reloadAnswer struct {
	Result string `json:"result"` // "reloaded" or "refused"
	// Restart names the changed keys that take effect only after a restart
	// (left out when none): the reload applied the others.
	Restart []string `json:"restart_required,omitempty"`
	// Error says why the reload was refused: the running configuration stays.
	Error string `json:"error,omitempty"`
}

// reloadHandler answers POST /reload: it calls Options.Reload and says what
// happened, 200 when the configuration was reloaded, 422 when it was refused
// (it does not validate; the running one stays), as JSON. A browser's
// cross-origin POST is refused with 403 (http.CrossOriginProtection): without
// a token, any web page an operator opens could otherwise make the browser
// send one to a loopback listener. GET and HEAD get 405.
func (s *Server) reloadHandler() http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Info("reload requested", zap.String("remote", r.RemoteAddr))

		answer := reloadAnswer{Result: "reloaded"}
		code := http.StatusOK

		restart, err := s.opts.Reload()
		if err != nil {
			answer = reloadAnswer{Result: "refused", Error: err.Error()}
			code = http.StatusUnprocessableEntity
		} else {
			answer.Restart = restart
		}

		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)

		if err := json.NewEncoder(w).Encode(answer); err != nil {
			s.log.Debug("write /reload", zap.Error(err))
		}
	})

	return http.NewCrossOriginProtection().Handler(h)
}
