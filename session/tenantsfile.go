package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TenantsFile is the YAML file that declares tenants and their users.
type TenantsFile struct {
	Tenants []TenantSpec `yaml:"tenants"`
}

// TenantSpec is one tenant of a tenants file: its configuration and users.
type TenantSpec struct {
	Tenant `yaml:",inline"`
	Users  []UserSpec `yaml:"users"`
}

// UserSpec is one user of a tenants file. Files carry hashes, never
// passwords: `latchkey hash-password` makes them.
type UserSpec struct {
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"`
	Disabled     bool   `yaml:"disabled"`
}

// maxTenantsFile bounds the file size read, in bytes.
const maxTenantsFile = 16 << 20

var yamlUnknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)

// ParseTenantsFile parses and validates a tenants file, reporting every
// problem at once as a *ValidationError: unknown keys, bad values, unsafe
// origins, duplicate tenants, users or hostnames. Defaults are applied.
func ParseTenantsFile(r io.Reader) (*TenantsFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTenantsFile+1))
	if err != nil {
		return nil, fmt.Errorf("session: read tenants file: %w", err)
	}
	if len(data) > maxTenantsFile {
		return nil, fmt.Errorf("session: tenants file is larger than %d bytes", maxTenantsFile)
	}
	var f TenantsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlProblems(err)
	}
	ps := &problems{}
	if len(f.Tenants) == 0 {
		ps.add("tenants", "the file declares no tenants")
	}
	seen := make(map[TenantID]int)
	ts := make([]Tenant, 0, len(f.Tenants))
	for i := range f.Tenants {
		spec := &f.Tenants[i]
		spec.Tenant = spec.Tenant.withDefaults()
		tp := &problems{tenant: string(spec.ID)}
		if spec.ID == "" {
			tp.tenant = fmt.Sprintf("tenants[%d]", i)
		}
		if j, dup := seen[spec.ID]; dup && spec.ID != "" {
			tp.add("id", "tenant %q is declared twice (also tenants[%d])", spec.ID, j)
		}
		seen[spec.ID] = i
		spec.Tenant.validate(tp)
		users := make(map[string]int)
		for j, u := range spec.Users {
			field := fmt.Sprintf("users[%d]", j)
			if msg := validUsername(u.Username); msg != "" {
				tp.add(field+".username", "%s", msg)
			}
			if k, dup := users[u.Username]; dup {
				tp.add(field+".username", "%q is declared twice (also users[%d])", u.Username, k)
			}
			users[u.Username] = j
			if err := CheckPasswordHash(u.PasswordHash); err != nil {
				tp.add(field+".password_hash", "%v; make one with `latchkey hash-password`", err)
			}
		}
		ps.list = append(ps.list, tp.list...)
		ts = append(ts, spec.Tenant)
	}
	ps.list = append(ps.list, checkHostnameClaims(ts)...)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return &f, nil
}

// yamlProblems turns the YAML decoder's errors into Problems without the Go
// type names it mentions.
func yamlProblems(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &ValidationError{Problems: []Problem{{Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	ps := make([]Problem, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := yamlUnknownField.FindStringSubmatch(e); m != nil {
			ps = append(ps, Problem{Field: "line " + m[1], Message: fmt.Sprintf("unknown key %q", m[2])})
			continue
		}
		ps = append(ps, Problem{Message: e})
	}
	return &ValidationError{Problems: ps}
}

// Apply creates or updates every tenant and user of the file in the store.
// Users not in the file are left alone, as are tenants not in it. A user
// whose hash changed, or who is now disabled, loses its sessions; applying
// the same file twice (every replica does at start-up) changes nothing.
func (m *Manager) Apply(ctx context.Context, f *TenantsFile) error {
	if err := m.CheckTenantsFile(f); err != nil {
		return err
	}
	for _, spec := range f.Tenants {
		if _, _, err := m.PutTenant(ctx, spec.Tenant); err != nil {
			return fmt.Errorf("tenant %q: %w", spec.ID, err)
		}
		for _, us := range spec.Users {
			hash, disabled := us.PasswordHash, us.Disabled
			u, err := m.GetUser(ctx, spec.ID, us.Username)
			switch {
			case errors.Is(err, ErrNotFound):
				_, err = m.CreateUser(ctx, spec.ID, UserInput{Username: us.Username, PasswordHash: &hash, Disabled: &disabled})
			case err == nil && (u.PasswordHash != hash || u.Disabled != disabled):
				_, err = m.UpdateUser(ctx, spec.ID, us.Username, UserInput{PasswordHash: &hash, Disabled: &disabled})
			}
			if err != nil {
				return fmt.Errorf("tenant %q: user %q: %w", spec.ID, us.Username, err)
			}
		}
	}
	return nil
}
