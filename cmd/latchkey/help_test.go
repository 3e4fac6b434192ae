package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestHelp runs every way of asking for help: each prints its text on
// stdout, nothing on stderr, and succeeds (main exits 0 when run returns
// nil), and none starts the service.
func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{"serve -h", []string{"serve", "-h"}, []string{"usage: latchkey serve [flags]", "-addr", "LATCHKEY_REDIS_URL", "-redis-prefix"}},
		{"serve -help", []string{"serve", "-help"}, []string{"usage: latchkey serve [flags]"}},
		{"serve --help", []string{"serve", "--help"}, []string{"usage: latchkey serve [flags]"}},
		{"serve --help after a flag", []string{"serve", "-log-level", "debug", "--help"}, []string{"usage: latchkey serve [flags]"}},
		{"help serve", []string{"help", "serve"}, []string{"usage: latchkey serve [flags]", "-tenants-file"}},
		{"-h", []string{"-h"}, []string{"usage: latchkey <command>", "serve", "doctor", "hash-password"}},
		{"--help", []string{"--help"}, []string{"usage: latchkey <command>"}},
		{"help", []string{"help"}, []string{"usage: latchkey <command>"}},
		{"help hash-password", []string{"help", "hash-password"}, []string{"usage: latchkey hash-password", "password_hash"}},
		{"hash-password -h", []string{"hash-password", "-h"}, []string{"usage: latchkey hash-password"}},
		{"version --help", []string{"version", "--help"}, []string{"usage: latchkey version"}},
		{"help doctor", []string{"help", "doctor"}, []string{"usage: latchkey doctor --tenants-file FILE", "--admin-url URL", "Exit status: 0"}},
		{"doctor -h", []string{"doctor", "-h"}, []string{"usage: latchkey doctor"}},
		{"doctor --help after a flag", []string{"doctor", "--tenant", "acme", "--help"}, []string{"usage: latchkey doctor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			// A secret in the environment never shows in the help.
			env := map[string]string{"LATCHKEY_ADMIN_TOKEN": "env-admin-token-0123456789"}
			err := run(context.Background(), tt.args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
			if err != nil {
				t.Fatalf("run(%q) = %v, want nil (exit status 0); stderr:\n%s", tt.args, err, &stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr=%q, want nothing", &stderr)
			}
			if strings.Contains(stdout.String(), "latchkey serving") || strings.Contains(stdout.String(), env["LATCHKEY_ADMIN_TOKEN"]) {
				t.Errorf("the help started the service or showed a secret:\n%s", &stdout)
			}
		})
	}
}

// TestBadUsage: a bad flag, argument or command is a usage error (exit
// status 2) explained once on stderr, with nothing on stdout.
func TestBadUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // substring of stderr
	}{
		{"unknown serve flag", []string{"serve", "-nope"}, "flag provided but not defined: -nope"},
		{"serve argument", []string{"serve", "now"}, ""},
		{"no command", nil, "usage: latchkey <command>"},
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"help for an unknown command", []string{"help", "bogus"}, `unknown command "bogus"`},
		{"version argument", []string{"version", "now"}, "takes no arguments"},
		{"unknown doctor flag", []string{"doctor", "--nope"}, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error", tt.args)
			}
			if tt.want != "" {
				if !errors.Is(err, errUsage) {
					t.Errorf("run(%q) = %v, want errUsage (explained already, exit status 2)", tt.args, err)
				}
				if !strings.Contains(stderr.String(), tt.want) {
					t.Errorf("stderr=%q, want it to contain %q", &stderr, tt.want)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout=%q, want nothing", &stdout)
			}
		})
	}
}
