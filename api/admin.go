package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkeyhq/latchkey/session"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyTimeout bounds the store ping of a readiness probe, well inside a
// Kubernetes probe's default one-second timeout.
const readyTimeout = 800 * time.Millisecond

// handleReady reports whether this replica should get traffic: tenants are
// loaded, the store answers, and the process is not draining.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	var why string
	switch {
	case s.draining.Load():
		why = "shutting down"
	case !s.ready.Load():
		why = "tenants not loaded yet"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.m.Ping(ctx); err != nil {
			why = "the session store is not answering"
		}
	}
	if why != "" {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, newProblem(kindUnavailable, why))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// MarkReady records that tenants have been loaded once; until then /readyz
// fails.
func (s *Server) MarkReady() { s.ready.Store(true) }

// Drain makes /readyz fail so that load balancers stop sending traffic
// before the listeners close.
func (s *Server) Drain() { s.draining.Store(true) }

type tenantList struct {
	Tenants []session.Tenant `json:"tenants"`
}

func (s *Server) handleListTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := s.m.ListTenants(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tenantList{Tenants: ts})
}

// pathTenant parses {tenant}; a malformed ID cannot exist, so it is a 404.
func pathTenant(r *http.Request) (session.TenantID, error) {
	id := session.TenantID(chi.URLParam(r, "tenant"))
	if !id.Valid() {
		return "", errorf(kindNotFound, "no such tenant")
	}
	return id, nil
}

// adminTenant returns the tenant named in the path, from the store (the
// authority for administration; requests use the in-memory view).
func (s *Server) adminTenant(r *http.Request) (session.Tenant, error) {
	id, err := pathTenant(r)
	if err != nil {
		return session.Tenant{}, err
	}
	return s.m.GetTenant(r.Context(), id)
}

// requireAdminTenant loads the tenant named in the path for the routes
// below it; an unknown tenant is a 404 before any handler runs.
func (s *Server) requireAdminTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := s.adminTenant(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, &t)))
	})
}

func (s *Server) handleGetTenant(w http.ResponseWriter, r *http.Request) {
	t, err := s.adminTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// tenantInput is session.Tenant with the ID optional: the path names it.
type tenantInput struct {
	session.Tenant
}

func (s *Server) handlePutTenant(w http.ResponseWriter, r *http.Request) {
	id := session.TenantID(chi.URLParam(r, "tenant"))
	var in tenantInput
	if err := s.decodeAdmin(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.ID != "" && in.ID != id {
		s.writeError(w, r, errorf(kindBadRequest, "the body's id must match the path's tenant"))
		return
	}
	in.ID = id
	t, created, err := s.m.PutTenant(r.Context(), in.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "tenant saved", "tenant", t.ID, "created", created)
	for _, w := range t.Warnings() {
		s.log.WarnContext(r.Context(), "this tenant's cookie will not work in browsers for an origin", "tenant", w.Tenant, "field", w.Field, "fix", w.Message)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, t)
}

func (s *Server) handleDeleteTenant(w http.ResponseWriter, r *http.Request) {
	id, err := pathTenant(r)
	if err == nil {
		err = s.m.DeleteTenant(r.Context(), id)
	}
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "tenant deleted", "tenant", id)
	w.WriteHeader(http.StatusNoContent)
}

// decodeAdmin reads a JSON admin request body.
func (s *Server) decodeAdmin(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := readJSONBody(w, r, maxAdminBody)
	if err != nil {
		return err
	}
	return decodeJSON(body, dst)
}

type userAdmin struct {
	Username  string    `json:"username"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func userAdminOf(u session.User) userAdmin {
	return userAdmin{Username: u.Username, Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

type userList struct {
	Users []userAdmin `json:"users"`
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	us, err := s.m.ListUsers(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := userList{Users: make([]userAdmin, len(us))}
	for i, u := range us {
		out.Users[i] = userAdminOf(u)
	}
	writeJSON(w, http.StatusOK, out)
}

type userInput struct {
	Username     string  `json:"username"`
	Password     *string `json:"password"`
	PasswordHash *string `json:"password_hash"`
	Disabled     *bool   `json:"disabled"`
}

type userPatch struct {
	Password     *string `json:"password"`
	PasswordHash *string `json:"password_hash"`
	Disabled     *bool   `json:"disabled"`
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in userInput
	if err := s.decodeAdmin(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.m.CreateUser(r.Context(), t.ID, session.UserInput{
		Username: in.Username, Password: in.Password, PasswordHash: in.PasswordHash, Disabled: in.Disabled,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userAdminOf(u))
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	u, err := s.m.GetUser(r.Context(), t.ID, chi.URLParam(r, "username"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userAdminOf(u))
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in userPatch
	if err := s.decodeAdmin(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.m.UpdateUser(r.Context(), t.ID, chi.URLParam(r, "username"), session.UserInput{
		Password: in.Password, PasswordHash: in.PasswordHash, Disabled: in.Disabled,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userAdminOf(u))
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	if err := s.m.DeleteUser(r.Context(), t.ID, chi.URLParam(r, "username")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminListSessions(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	u, err := s.m.GetUser(r.Context(), t.ID, chi.URLParam(r, "username"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ss, err := s.m.Sessions(r.Context(), t, u.Username)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(ss, ""))
}

func (s *Server) handleAdminRevokeSessions(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	if err := s.m.RevokeAll(r.Context(), t, chi.URLParam(r, "username")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminRevokeSession(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	if err := s.m.Revoke(r.Context(), t, chi.URLParam(r, "username"), chi.URLParam(r, "id")); err != nil && !errors.Is(err, session.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
