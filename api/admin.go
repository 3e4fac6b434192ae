package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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

// handleListTenants lists every tenant for the platform, and only its own
// for a tenant admin key (one read).
func (s *Server) handleListTenants(w http.ResponseWriter, r *http.Request) {
	var ts []session.Tenant
	var err error
	if k := principalFrom(r.Context()).key; k != nil {
		var t session.Tenant
		t, err = s.m.GetTenant(r.Context(), k.Tenant)
		ts = []session.Tenant{t}
		if errors.Is(err, session.ErrNotFound) {
			ts, err = []session.Tenant{}, nil
		}
	} else {
		ts, err = s.m.ListTenants(r.Context())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tenantList{Tenants: ts})
}

// audit records an admin change in the tenant's audit log. A failure to
// record is logged, not returned: the change itself has happened, and an
// error would tell the caller otherwise.
func (s *Server) audit(r *http.Request, t session.TenantID, action, target string, before, after any) {
	e := session.AuditEntry{Actor: principalFrom(r.Context()).actor(), Action: action, Target: target}
	if before != nil {
		e.Before, _ = json.Marshal(before)
	}
	if after != nil {
		e.After, _ = json.Marshal(after)
	}
	if err := s.m.Audit(context.WithoutCancel(r.Context()), t, e); err != nil {
		s.log.ErrorContext(r.Context(), "could not write the audit log", "tenant", t, "action", action, "err", err)
	}
}

// pathTenant parses {tenant}; a malformed ID cannot exist, so it is a 404.
func pathTenant(r *http.Request) (session.TenantID, error) {
	id := session.TenantID(pathParam(r, "tenant"))
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
		withTenant(r, &t)
		next.ServeHTTP(w, r)
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
	id := session.TenantID(pathParam(r, "tenant"))
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
	before, err := s.m.GetTenant(r.Context(), id)
	exists := err == nil
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	if principalFrom(r.Context()).key != nil {
		// A tenant admin manages its origins, cookie and session policy and
		// login limits. Hostnames route a domain to a tenant and must be
		// verified; dev opens the tenant to any local process: both stay
		// with the platform.
		switch {
		case !exists:
			s.writeError(w, r, errorf(kindNotFound, fmt.Sprintf("tenant %q", id)))
			return
		case !slices.Equal(normalHostnames(in.Hostnames), normalHostnames(before.Hostnames)) || in.Dev != before.Dev:
			s.writeError(w, r, errorf(kindForbidden, "only the platform token may change hostnames or dev"))
			return
		}
	}
	t, created, err := s.m.PutTenant(r.Context(), in.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if created {
		s.audit(r, t.ID, "tenant.create", string(t.ID), nil, t)
	} else {
		s.audit(r, t.ID, "tenant.update", string(t.ID), before, t)
	}
	s.log.InfoContext(r.Context(), "tenant saved", "tenant", t.ID, "created", created)
	out := tenantSaved{Tenant: t, Warnings: []warningView{}, Doctor: doctorOfOrigins(&t, s.m.SharedHost())}
	for _, w := range s.m.Warnings(&t) {
		s.log.WarnContext(r.Context(), w.LogMessage(), "tenant", w.Tenant, "field", w.Field, "engines", w.Engines, "fix", w.Message)
		out.Warnings = append(out.Warnings, warningView{Field: w.Field, Message: w.Message, Engines: w.Engines})
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

// tenantSaved answers a PUT: the tenant as stored, what of it will not
// work in browsers, and the doctor's verdict on each origin, so that
// whoever saved it learns at once rather than from a log they may not read.
type tenantSaved struct {
	session.Tenant
	Warnings []warningView  `json:"warnings"`
	Doctor   []originDoctor `json:"doctor"`
}

// warningView is a session.Warning as the admin API renders it.
type warningView struct {
	Field   string   `json:"field"`
	Message string   `json:"message"`
	Engines []string `json:"engines"`
}

// handleDeleteTenant answers 404 for a tenant that does not exist: a 204
// would say that something was deleted.
func (s *Server) handleDeleteTenant(w http.ResponseWriter, r *http.Request) {
	before, err := s.adminTenant(r)
	if err == nil {
		err = s.m.DeleteTenant(r.Context(), before.ID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "tenant deleted", "tenant", before.ID)
	s.audit(r, before.ID, "tenant.delete", string(before.ID), before, nil)
	w.WriteHeader(http.StatusNoContent)
}

// normalHostnames treats a missing list and an empty one alike.
func normalHostnames(hs []string) []string {
	if len(hs) == 0 {
		return nil
	}
	return hs
}

// decodeAdmin reads a JSON admin request body.
func (s *Server) decodeAdmin(w http.ResponseWriter, r *http.Request, dst any) error {
	return decodeBody(w, r, maxAdminBody, dst)
}

type userAdmin struct {
	Username string `json:"username"`
	// Email is the address as the user typed it; absent for none.
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func userAdminOf(u session.User) userAdmin {
	return userAdmin{
		Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
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
	Username      string  `json:"username"`
	Password      *string `json:"password"`
	PasswordHash  *string `json:"password_hash"`
	Disabled      *bool   `json:"disabled"`
	Email         *string `json:"email"`
	EmailVerified *bool   `json:"email_verified"`
}

type userPatch struct {
	Password     *string `json:"password"`
	PasswordHash *string `json:"password_hash"`
	Disabled     *bool   `json:"disabled"`
	// Email is kept raw to tell null (remove the address) from absent
	// (leave it): a *string is nil for both.
	Email         jsontext.Value `json:"email"`
	EmailVerified *bool          `json:"email_verified"`
}

// email returns the change to the user's address the patch asks for: nil
// for none, "" to remove it (null or "").
func (p *userPatch) email() (*string, error) {
	switch {
	case p.Email == nil:
		return nil, nil
	case p.Email.Kind() == 'n':
		return new(""), nil
	case p.Email.Kind() != '"':
		return nil, errorf(kindBadRequest, `field "/email" must be a string or null`)
	}
	var v string
	if err := jsonv2.Unmarshal(p.Email, &v); err != nil {
		return nil, &bodyError{err}
	}
	return &v, nil
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
		Email: in.Email, EmailVerified: in.EmailVerified,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, t.ID, "user.create", u.Username, nil, userAdminOf(u))
	writeJSON(w, http.StatusCreated, userAdminOf(u))
}

// pathUser returns the user {username} names (session.Manager.GetUser:
// any form that normalizes to a stored name, or a stored name exactly), or
// ErrNotFound. Handlers act on the returned User.Username, the stored
// name, and answer 404 before doing anything for a user that does not
// exist.
func (s *Server) pathUser(r *http.Request) (session.User, error) {
	return s.m.GetUser(r.Context(), tenantFromContext(r.Context()).ID, pathParam(r, "username"))
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.pathUser(r)
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
	email, err := in.email()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	before, err := s.pathUser(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.m.UpdateUser(r.Context(), t.ID, before.Username, session.UserInput{
		Password: in.Password, PasswordHash: in.PasswordHash, Disabled: in.Disabled,
		Email: email, EmailVerified: in.EmailVerified,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The fact of a password change, never the password or its hash.
	after := struct {
		userAdmin
		PasswordChanged bool `json:"password_changed"`
	}{userAdminOf(u), u.PasswordHash != before.PasswordHash}
	s.audit(r, t.ID, "user.update", u.Username, userAdminOf(before), after)
	writeJSON(w, http.StatusOK, userAdminOf(u))
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	u, err := s.pathUser(r)
	if err == nil {
		err = s.m.DeleteUser(r.Context(), t.ID, u.Username)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, t.ID, "user.delete", u.Username, userAdminOf(u), nil)
	w.WriteHeader(http.StatusNoContent)
}

// handleSendVerification mails the user a new verification link: 202,
// since the mail goes out in the background. A user without an address,
// or verified already, is a 409; a tenant whose verification is off, 404
// not-enabled.
func (s *Server) handleSendVerification(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	u, err := s.pathUser(r)
	if err == nil {
		err = s.m.SendVerification(r.Context(), t, u.Username)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, t.ID, "user.verification.send", u.Username, nil, nil)
	writeJSON(w, http.StatusAccepted, accepted{})
}

func (s *Server) handleAdminListSessions(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	u, err := s.pathUser(r)
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
	u, err := s.pathUser(r)
	if err == nil {
		err = s.m.RevokeAll(r.Context(), t, u.Username)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.sessionsRevoked.WithLabelValues(string(t.ID), "admin").Inc()
	s.audit(r, t.ID, "user.sessions.revoke", u.Username, nil, nil)
	w.WriteHeader(http.StatusNoContent)
}

// handleAdminRevokeSession answers 404 for a session the user does not
// have, as the public DELETE /sessions/{id} does.
func (s *Server) handleAdminRevokeSession(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	id := pathParam(r, "id")
	u, err := s.pathUser(r)
	if err == nil {
		err = s.m.Revoke(r.Context(), t, u.Username, id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.sessionsRevoked.WithLabelValues(string(t.ID), "admin").Inc()
	s.audit(r, t.ID, "user.session.revoke", u.Username+" "+id, nil, nil)
	w.WriteHeader(http.StatusNoContent)
}

type keyView struct {
	ID        string     `json:"id"`
	Tenant    string     `json:"tenant"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Expired   bool       `json:"expired"`
	// Key is the secret, present only in the answer that creates it.
	Key string `json:"key,omitempty"`
}

func (s *Server) keyViewOf(k session.AdminKey) keyView {
	v := keyView{ID: k.ID, Tenant: string(k.Tenant), Name: k.Name, CreatedAt: k.CreatedAt.UTC(), Expired: k.Expired(time.Now())}
	if !k.ExpiresAt.IsZero() {
		e := k.ExpiresAt.UTC()
		v.ExpiresAt = &e
	}
	return v
}

type keyList struct {
	Keys []keyView `json:"keys"`
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	ks, err := s.m.ListAdminKeys(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := keyList{Keys: make([]keyView, len(ks))}
	for i, k := range ks {
		out.Keys[i] = s.keyViewOf(k)
	}
	writeJSON(w, http.StatusOK, out)
}

type keyInput struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// handleCreateKey makes a tenant admin key and shows its secret this once.
func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in keyInput
	if err := s.decodeAdmin(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var exp time.Time
	if in.ExpiresAt != nil {
		exp = *in.ExpiresAt
	}
	k, secret, err := s.m.CreateAdminKey(r.Context(), t.ID, in.Name, exp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := s.keyViewOf(k)
	s.audit(r, t.ID, "key.create", k.ID, nil, v) // before the secret is added
	v.Key = secret
	writeJSON(w, http.StatusCreated, v)
}

// handleDeleteKey answers 404 for a key the tenant does not have.
func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	id := pathParam(r, "id")
	ks, err := s.m.ListAdminKeys(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	i := slices.IndexFunc(ks, func(k session.AdminKey) bool { return k.ID == id })
	if i < 0 {
		s.writeError(w, r, errorf(kindNotFound, fmt.Sprintf("admin key %q", id)))
		return
	}
	if err := s.m.DeleteAdminKey(r.Context(), t.ID, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, t.ID, "key.delete", id, s.keyViewOf(ks[i]), nil)
	w.WriteHeader(http.StatusNoContent)
}

type auditList struct {
	Entries []session.AuditEntry `json:"entries"`
}

// handleListAudit returns the newest audit entries, ?limit=1..1000
// (default 100). The log outlives its tenant, so this needs no tenant.
func (s *Server) handleListAudit(w http.ResponseWriter, r *http.Request) {
	id, err := pathTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := 100
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > session.MaxAudit {
			s.writeError(w, r, errorf(kindBadRequest, fmt.Sprintf("limit must be 1 to %d", session.MaxAudit)))
			return
		}
		limit = n
	}
	es, err := s.m.ListAudit(r.Context(), id, limit)
	if err == nil && len(es) == 0 {
		// No entries and no tenant: nothing by that name ever existed
		// (a deleted tenant's log holds at least its deletion).
		_, err = s.m.GetTenant(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, auditList{Entries: es})
}
