package session

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckNewPassword(t *testing.T) {
	t.Parallel()
	plain := validTenant()
	strict := validTenant()
	strict.Accounts = &AccountsPolicy{EmailVerification: VerificationRequired, PasswordMinLength: 12}
	tests := []struct {
		name     string
		tenant   *Tenant
		password string
		username string
		email    string
		detail   string // "" means accepted
	}{
		{name: "good", tenant: &plain, password: "correct horse battery", username: "alice", email: "alice@example.com"},
		{name: "eight characters", tenant: &plain, password: "zq8!mv3k"},
		{name: "eight runes of more bytes", tenant: &plain, password: "ééééééé1"},
		{name: "seven characters", tenant: &plain, password: "zq8!mv3", detail: "at least 8 characters"},
		{name: "seven runes of 14 bytes", tenant: &plain, password: "ééééééé", detail: "at least 8 characters"},
		{name: "empty", tenant: &plain, password: "", detail: "at least 8 characters"},
		{name: "tenant minimum", tenant: &strict, password: "zq8!mv3kzq8", detail: "at least 12 characters"},
		{name: "tenant minimum met", tenant: &strict, password: "zq8!mv3kzq8!"},
		{name: "at the byte bound", tenant: &plain, password: strings.Repeat("xy", MaxPasswordLen/2)},
		{name: "over the byte bound", tenant: &plain, password: strings.Repeat("x", MaxPasswordLen+1), detail: "at most 1024 bytes"},
		{name: "common", tenant: &plain, password: "password1", detail: "one of the 10000 most common passwords; choose another"},
		{name: "common, most common", tenant: &plain, password: "12345678", detail: "one of the 10000 most common passwords"},
		{name: "common, any case", tenant: &plain, password: "IloveYou", detail: "one of the 10000 most common passwords"},
		{name: "common, last of the list", tenant: &plain, password: "24081990", detail: "one of the 10000 most common passwords"},
		{name: "the username", tenant: &plain, password: "Alice.Ops", username: "alice.ops", detail: "must not be the username"},
		{name: "the address", tenant: &plain, password: "Bob.Smith@Example.com", email: "bob.smith@example.com", detail: "must not be the email address"},
		{name: "the local part", tenant: &plain, password: "BOB.SMITH", email: "bob.smith@example.com", detail: "part of the email address before the @"},
		{name: "contains the username", tenant: &plain, password: "alice.ops-2026!", username: "alice.ops"},
		{name: "no email given", tenant: &plain, password: "bob.smith", email: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.tenant.CheckNewPassword(tt.password, tt.username, tt.email)
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("CheckNewPassword(%q) = %v, want nil", tt.password, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("CheckNewPassword(%q) = %v, want a KindWeakPassword *Error", tt.password, err)
			}
			if !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("Detail = %q, want it to contain %q", e.Detail, tt.detail)
			}
			if strings.Contains(e.Detail, tt.password) && tt.password != "" {
				t.Errorf("Detail = %q repeats the password", e.Detail)
			}
		})
	}
}

func TestCommonPasswordsList(t *testing.T) {
	t.Parallel()
	list := commonPasswords()
	if len(list) != commonPasswordsCount {
		t.Fatalf("the list has %d distinct entries, the refusal says %d", len(list), commonPasswordsCount)
	}
	for _, p := range list {
		if p == "" || p != strings.ToLower(p) || strings.ContainsAny(p, "\r\n") {
			t.Fatalf("entry %q is not a lowercased, non-empty line", p)
		}
	}
	first, _, _ := strings.Cut(commonPasswordsText, "\n")
	if first != "123456" {
		t.Errorf("first entry = %q, want the most common, 123456 (the file keeps its source's order)", first)
	}
}

// BenchmarkLoadCommonPasswords reports what building the list costs
// (B/op): its strings point into the embedded text, so only the slice is
// allocated.
func BenchmarkLoadCommonPasswords(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		list := strings.Split(strings.TrimSuffix(commonPasswordsText, "\n"), "\n")
		slices.Sort(list)
		_ = slices.Compact(list)
	}
}

func BenchmarkIsCommonPassword(b *testing.B) {
	commonPasswords()
	for b.Loop() {
		isCommonPassword("Correct-Horse-Battery")
	}
}
