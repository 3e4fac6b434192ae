package topology_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/topology"
)

// refuseTimeout bounds how long Latchkey may take to refuse to start.
const refuseTimeout = 20 * time.Second

// TestTLS runs Latchkey on a rediss:// URL against a Redis that requires a
// client certificate signed by a CA of the test's own (redis-server
// --tls-port, which Debian's build supports): with the CA and the client
// certificate it works; with another CA, or without a client certificate,
// it refuses to start and says why.
func TestTLS(t *testing.T) {
	t.Parallel()
	proctest.PrebuildLatchkey()
	files := topology.WriteTLSFiles(t)
	tlsPort := proctest.FreePort(t)
	// The plain port stays open for StartRedis's PING; Latchkey only
	// knows the TLS one.
	proctest.StartRedis(t, proctest.RedisConfig{Args: []string{
		"--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", files.ServerCert, "--tls-key-file", files.ServerKey,
		"--tls-ca-cert-file", files.CA, "--tls-auth-clients", "yes",
	}})
	url := fmt.Sprintf("rediss://127.0.0.1:%d/0", tlsPort)

	t.Run("CAAndClientCertificate", func(t *testing.T) {
		t.Parallel()
		file, password := writeTenantsFile(t)
		lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: url, TenantsFile: file, Env: map[string]string{
			"LATCHKEY_REDIS_CA_FILE": files.CA, "LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ClientKey,
		}})
		c := newLKClient(lk.Public, lk.Admin)
		in := c.login(userName, password)
		if in.Status != http.StatusOK || in.Cookie() == "" {
			t.Fatalf("login over TLS: %v, want 200 with a cookie", in)
		}
		if r := c.me(in.Cookie()); r.Status != http.StatusOK {
			t.Errorf("me over TLS: %v, want 200", r)
		}
		if r := c.logout(in.Cookie()); r.Status != http.StatusNoContent {
			t.Errorf("logout over TLS: %v, want 204", r)
		}
		if !strings.Contains(lk.Output(), `"tls":true,"client_cert":true`) {
			t.Errorf("the start-up log does not report TLS with a client certificate:\n%s", lk.Output())
		}
	})

	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"WrongCA", map[string]string{
			"LATCHKEY_REDIS_CA_FILE": files.OtherCA, "LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ClientKey,
		}, "TLS certificate does not verify against LATCHKEY_REDIS_CA_FILE"},
		{"NoClientCertificate", map[string]string{"LATCHKEY_REDIS_CA_FILE": files.CA}, "refused the TLS handshake"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LATCHKEY_REDIS_URL": url}
			for k, v := range tt.env {
				env[k] = v
			}
			out, err := runLatchkey(t, env)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("latchkey serve: %v, want a non-zero exit\n%s", err, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("latchkey's output does not say %q:\n%s", tt.want, out)
			}
			t.Logf("latchkey refused to start: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
		})
	}
}

// runLatchkey runs `latchkey serve` with env (LATCHKEY_* only, plus fresh
// ports and cookie key) and returns its output once it exits, which it
// must do within refuseTimeout.
func runLatchkey(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), refuseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, proctest.BuildLatchkey(t), "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"LATCHKEY_ADDR=" + proctest.FreeAddr(t), "LATCHKEY_ADMIN_ADDR=" + proctest.FreeAddr(t), "LATCHKEY_COOKIE_KEYS=" + cookieKey}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("latchkey serve did not exit within %v\n%s", refuseTimeout, b)
	}
	return string(b), err
}
