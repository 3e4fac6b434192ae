package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestBinaryRunsWithDevOverlay starts the binary the Dockerfile's build
// stage makes with the dev overlay's container settings, its ConfigMap and
// Secret written out as the kubelet would mount them, and walks the probe
// and stop sequence the manifests rely on: /healthz and /readyz answer on
// the admin port, the admin token read from the mounted file works,
// /metrics answers the metrics token from its file and nothing else, and
// after SIGTERM /readyz fails for LATCHKEY_DRAIN_DELAY before the process
// exits, well within terminationGracePeriodSeconds.
//
// Two settings differ, as nothing of a cluster is here: both listeners
// bind 127.0.0.1:0, and LATCHKEY_REDIS_URL is left out (the in-memory
// store), since the dev Redis is a Service name.
func TestBinaryRunsWithDevOverlay(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	r := render(t, renderings[0])
	d, c := r.latchkey(t)
	root := t.TempDir()

	// Mount the Secret and ConfigMap volumes under root.
	remap := func(p string) string { return p }
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		writeVolume(t, r, d.Namespace, &d.Spec.Template.Spec, m.Name, dir)
		prev, mount := remap, path.Clean(m.MountPath)+"/"
		remap = func(p string) string {
			if rest, ok := strings.CutPrefix(p, mount); ok {
				return filepath.Join(dir, rest)
			}
			return prev(p)
		}
	}
	env := []string{"PATH=/usr/bin:/bin"}
	var drain time.Duration
	var adminToken, metricsToken string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			kind, name, key := "", "", ""
			switch {
			case e.ValueFrom.SecretKeyRef != nil:
				kind, name, key = "Secret", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key
			case e.ValueFrom.ConfigMapKeyRef != nil:
				kind, name, key = "ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key
			default:
				t.Fatalf("env %s: only secretKeyRef and configMapKeyRef are understood here", e.Name)
			}
			var ok bool
			if v, _, ok = r.lookupData(kind, d.Namespace, name, key); !ok {
				t.Fatalf("env %s: %s %s has no key %s", e.Name, kind, name, key)
			}
		}
		switch e.Name {
		case "LATCHKEY_ADDR", "LATCHKEY_ADMIN_ADDR":
			v = "127.0.0.1:0"
		case "LATCHKEY_REDIS_URL":
			continue
		case "LATCHKEY_DRAIN_DELAY":
			drain, _ = time.ParseDuration(v)
		}
		if strings.HasSuffix(e.Name, "_FILE") {
			v = remap(v)
		}
		if e.Name == "LATCHKEY_ADMIN_TOKEN_FILE" || e.Name == "LATCHKEY_METRICS_TOKEN_FILE" {
			b, err := os.ReadFile(v)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name == "LATCHKEY_ADMIN_TOKEN_FILE" {
				adminToken = strings.TrimSpace(string(b))
			} else {
				metricsToken = strings.TrimSpace(string(b))
			}
		}
		env = append(env, e.Name+"="+v)
	}
	if drain <= 0 || adminToken == "" || metricsToken == "" {
		t.Fatalf("the dev overlay sets no drain delay (%v), admin token file or metrics token file", drain)
	}

	cmd := exec.Command(bin, c.Args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs strings.Builder
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // only if still running; this PID is ours
		<-exited
		logMu.Lock()
		defer logMu.Unlock()
		if t.Failed() {
			t.Logf("latchkey's log:\n%s", logs.String())
		}
	})
	adminc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logs.WriteString(line + "\n")
			logMu.Unlock()
			var rec struct{ Msg, Admin string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "latchkey serving" {
				adminc <- rec.Admin
			}
		}
		exited <- cmd.Wait()
	}()
	var admin string
	select {
	case admin = <-adminc:
	case err := <-exited:
		exited <- err
		t.Fatalf("latchkey exited at start-up: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("latchkey did not start within 30 s")
	}
	base := "http://" + admin
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(p, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+p, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, string(b)
	}
	if code, body := get(c.LivenessProbe.HTTPGet.Path, ""); code != http.StatusOK {
		t.Fatalf("liveness GET %s = %d %s, want 200", c.LivenessProbe.HTTPGet.Path, code, body)
	}
	waitFor(t, 10*time.Second, "/readyz to answer 200", func() bool {
		code, _ := get(c.ReadinessProbe.HTTPGet.Path, "")
		return code == http.StatusOK
	})
	if code, body := get("/admin/v1/tenants", adminToken); code != http.StatusOK || !strings.Contains(body, `"dev"`) {
		t.Errorf("GET /admin/v1/tenants with the token from the mounted Secret = %d %.200s, want 200 listing the dev tenant", code, body)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token = %d, want 401", code)
	}
	if code, body := get("/metrics", metricsToken); code != http.StatusOK || !strings.Contains(body, "latchkey_http_requests_total") {
		t.Errorf("GET /metrics with the token from the mounted Secret = %d %.200s, want 200 with the metrics", code, body)
	}

	// The kubelet's preStop sleep is over: SIGTERM.
	stopped := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, drain/2, "/readyz to fail after SIGTERM", func() bool {
		code, _ := get(c.ReadinessProbe.HTTPGet.Path, "")
		return code == http.StatusServiceUnavailable
	})
	if code, _ := get(c.LivenessProbe.HTTPGet.Path, ""); code != http.StatusOK {
		t.Errorf("liveness answers %d while draining, want 200: the kubelet would kill a draining pod", code)
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-exited:
		exited <- err
		took := time.Since(stopped)
		if err != nil {
			t.Errorf("latchkey exited with %v after SIGTERM, want 0", err)
		}
		if took < drain-100*time.Millisecond {
			t.Errorf("latchkey stopped %v after SIGTERM, before the drain delay %v was over", took, drain)
		}
		t.Logf("stopped %v after SIGTERM (drain delay %v, grace period %v)", took.Round(time.Millisecond), drain, grace)
	case <-time.After(grace):
		t.Fatalf("latchkey still runs %v after SIGTERM: the kubelet would SIGKILL it", grace)
	}
}

// TestPlaceholderProxiesRefused starts the built binary with the prod
// overlay's trusted-proxies as it is in this repository, the placeholder:
// it must refuse to start, naming the setting, so that a deployment that
// forgot it fails at once instead of trusting a range or nobody.
func TestPlaceholderProxiesRefused(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	i := slices.IndexFunc(renderings, func(s renderingSpec) bool { return s.name == "prod" })
	r := render(t, renderings[i])
	d, c := r.latchkey(t)
	e, _ := envVar(c, "LATCHKEY_TRUSTED_PROXIES")
	v, _, ok := r.lookupData("ConfigMap", d.Namespace, e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key)
	if !ok || v != trustedProxiesPlaceholder {
		t.Fatalf("the prod overlay's trusted-proxies = %q, want the placeholder", v)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, c.Args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LATCHKEY_ADDR=127.0.0.1:0", "LATCHKEY_ADMIN_ADDR=127.0.0.1:0", "LATCHKEY_TRUSTED_PROXIES=" + v}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), "LATCHKEY_TRUSTED_PROXIES") {
		t.Fatalf("latchkey with the placeholder: %v, output %q; want a refusal naming LATCHKEY_TRUSTED_PROXIES", err, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(string(out)))
}

// writeVolume writes a Secret or ConfigMap volume's files into dir, as the
// kubelet would mount them.
func writeVolume(t *testing.T, r *rendering, namespace string, ps *corev1.PodSpec, name, dir string) {
	t.Helper()
	for _, v := range ps.Volumes {
		if v.Name != name {
			continue
		}
		sources, err := volumeSources(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range sources {
			if len(src.items) == 0 {
				t.Fatalf("volume %s: list its items, so that only the files the pod reads are written", name)
			}
			for _, it := range src.items {
				val, _, ok := r.lookupData(src.kind, namespace, src.name, it.Key)
				if !ok {
					t.Fatalf("volume %s: %s %s has no key %s", name, src.kind, src.name, it.Key)
				}
				p := filepath.Join(dir, it.Path)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(val), 0o400); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	t.Fatalf("no volume %s", name)
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
