package api

import (
	"net/http"

	"github.com/latchkeyhq/latchkey/session"
)

// handleDoctor answers what the doctor predicts for a page of the tenant in
// the path calling it as the body says (a session.DoctorInput): the
// session.Diagnosis, as `latchkey doctor --format json` prints it. Bad input
// is the doctor's *session.ValidationError, a 400 whose errors name each
// field. It reads the tenant and changes nothing, so, like every other
// read, it is not audited.
func (s *Server) handleDoctor(w http.ResponseWriter, r *http.Request) {
	var in session.DoctorInput
	if err := s.decodeAdmin(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := tenantFromContext(r.Context()).Doctor(in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
