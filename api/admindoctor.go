package api

import (
	"net/http"

	"github.com/latchkeyhq/latchkey/session"
)

// handleAdminDoctor answers what the doctor predicts for a page of the tenant in
// the path calling it as the body says (a session.DoctorInput): the
// session.Diagnosis, as `latchkey doctor --format json` prints it. Bad input
// is the doctor's *session.ValidationError, a 400 whose errors name each
// field. It reads the tenant and changes nothing, so, like every other
// read, it is not audited.
func (s *Server) handleAdminDoctor(w http.ResponseWriter, r *http.Request) {
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

// originDoctor is what the doctor says of one origin of a tenant as a PUT
// saved it: whether a login from that origin, calling the API where the
// page would, works in every browser profile, which profiles it fails in,
// and the fix for the first of them.
type originDoctor struct {
	Origin string `json:"origin"`
	// API is the base URL the doctor took the page to call.
	API             string   `json:"api"`
	WorksEverywhere bool     `json:"works_everywhere"`
	Failing         []string `json:"failing"`
	// Advice is the first failing profile's; absent when none fails.
	Advice string `json:"advice,omitempty"`
}

// doctorOfOrigins runs the doctor on each origin of t, in order, for the
// PUT's answer: at most one entry per origin (so at most
// session.MaxOrigins), each a few short strings. An origin is left out when
// the API URL its page calls cannot be known: a tenant without hostnames
// whose shared host (sharedHost, Manager.SharedHost) is not configured.
func doctorOfOrigins(t *session.Tenant, sharedHost string) []originDoctor {
	out := make([]originDoctor, 0, len(t.Origins))
	for _, o := range t.Origins {
		d, ok := diagnoseOrigin(t, o, sharedHost)
		if !ok {
			continue
		}
		od := originDoctor{Origin: o, API: d.API, WorksEverywhere: d.WorksEverywhere(), Failing: []string{}}
		for _, v := range d.Verdicts {
			if v.Works {
				continue
			}
			if len(od.Failing) == 0 {
				od.Advice = v.Advice
			}
			od.Failing = append(od.Failing, v.Browser)
		}
		out = append(out, od)
	}
	return out
}

// diagnoseOrigin is the doctor's diagnosis of a page on origin calling t
// where it would: in host form, the first hostname on the page's site
// (the one a page on app.acme.com calls among auth.acme.com and
// auth.acme.eu), else the first hostname, over HTTPS, as the warnings
// judge hostnames; without hostnames, the path form on the shared host,
// over plain HTTP when that host is this machine (a local demo), as
// Tenant.WarningsOn takes it. False when there is neither.
func diagnoseOrigin(t *session.Tenant, origin, sharedHost string) (session.Diagnosis, bool) {
	var apis []string
	switch {
	case len(t.Hostnames) > 0:
		for _, h := range t.Hostnames {
			apis = append(apis, "https://"+h+"/v1")
		}
	case sharedHost != "":
		scheme := "https"
		if session.IsLoopbackHost(sharedHost) {
			scheme = "http"
		}
		apis = []string{scheme + "://" + sharedHost + "/v1/t/" + string(t.ID)}
	default:
		return session.Diagnosis{}, false
	}
	var first session.Diagnosis
	found := false
	for _, api := range apis {
		// A saved tenant's own origin and an API URL built from its own
		// hostnames or the shared host are valid input: an error here
		// would be the doctor refusing what Latchkey serves, and the
		// origin is then left out rather than the PUT failed.
		d, err := t.Doctor(session.DoctorInput{PageOrigin: origin, API: api})
		if err != nil {
			continue
		}
		if d.SiteRelation != session.RelationCrossSite {
			return d, true
		}
		if !found {
			first, found = d, true
		}
	}
	return first, found
}
