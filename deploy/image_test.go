package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/deploy/internal/buildcheck"
	"github.com/latchkeyhq/latchkey/deploy/internal/dockerfile"
)

const (
	dockerfilePath   = "../Dockerfile"
	dockerignorePath = "../.dockerignore"
	// The runtime base: distroless static on Debian 12, nonroot, pinned by
	// the digest of its multi-arch index.
	baseImageRE = `^gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$`
)

var tempDir string

func TestMain(m *testing.M) {
	var err error
	if tempDir, err = os.MkdirTemp("", "latchkey-deploy-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tempDir)
	os.Exit(code)
}

func parseDockerfile(tb testing.TB) *dockerfile.File {
	tb.Helper()
	f, err := os.Open(dockerfilePath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	df, err := dockerfile.Parse(f)
	if err != nil {
		tb.Fatalf("%s: %v", dockerfilePath, err)
	}
	return df
}

type dockerfileCheck struct {
	name  string
	check func() error
}

// dockerfileChecks returns the rules of docs/operations.md, "The image",
// bound to df.
func dockerfileChecks(df *dockerfile.File) []dockerfileCheck {
	final := df.Final()
	build := df.Stage(buildcheck.BuildStage)
	last := func(st *dockerfile.Stage, cmd string) (dockerfile.Instruction, bool) {
		for i := len(st.Body) - 1; i >= 0; i-- {
			if st.Body[i].Cmd == cmd {
				return st.Body[i], true
			}
		}
		return dockerfile.Instruction{}, false
	}
	return []dockerfileCheck{
		{"multi-stage with a build stage", func() error {
			if len(df.Stages) < 2 || build == nil || build == final {
				return fmt.Errorf("%d stages, build stage %v: want a stage named %q and a separate final stage", len(df.Stages), build != nil, buildcheck.BuildStage)
			}
			return nil
		}},
		{"go build with CGO_ENABLED=0 and -trimpath", func() error {
			if build == nil {
				return errors.New("no build stage")
			}
			c, _, err := df.GoBuild(build, nil)
			if err != nil {
				return err
			}
			var errs []error
			if v, ok := c.Getenv("CGO_ENABLED"); !ok || v != "0" {
				errs = append(errs, errors.New("the go build does not set CGO_ENABLED=0: the binary would need a libc the base lacks"))
			}
			if !slices.Contains(c.Args, "-trimpath") {
				errs = append(errs, errors.New("the go build lacks -trimpath"))
			}
			if out, ok := c.Output(); !ok || !strings.HasPrefix(out, "/") {
				errs = append(errs, errors.New("the go build needs an absolute -o for the final stage to copy"))
			}
			if !slices.Contains(c.Args, "./cmd/latchkey") {
				errs = append(errs, fmt.Errorf("the go build does not build ./cmd/latchkey: %v", c.Args))
			}
			return errors.Join(errs...)
		}},
		{"static base pinned by digest", func() error {
			if !regexp.MustCompile(baseImageRE).MatchString(final.Base) {
				return fmt.Errorf("final FROM %q: want gcr.io/distroless/static-debian12:nonroot@sha256:<64 hex>", final.Base)
			}
			return nil
		}},
		{"every base has a version", func() error {
			var errs []error
			for _, st := range df.Stages {
				if df.Stage(strings.ToLower(st.Base)) != nil {
					continue // FROM an earlier stage
				}
				if err := checkImage(st.Base); err != nil {
					errs = append(errs, fmt.Errorf("stage %q: %w", st.Name, err))
				}
			}
			return errors.Join(errs...)
		}},
		{"the final stage copies the binary from the build stage", func() error {
			if build == nil {
				return errors.New("no build stage")
			}
			c, _, err := df.GoBuild(build, nil)
			if err != nil {
				return err
			}
			out, _ := c.Output()
			for _, in := range final.Body {
				from, ok := in.Flag("from")
				if in.Cmd == "COPY" && ok && strings.EqualFold(from, buildcheck.BuildStage) && strings.HasPrefix(in.Args, out+" ") {
					return nil
				}
			}
			return fmt.Errorf("no COPY --from=%s %s in the final stage", buildcheck.BuildStage, out)
		}},
		{"runs as 65532:65532", func() error {
			in, ok := last(final, "USER")
			if !ok {
				return errors.New("the final stage sets no USER")
			}
			if in.Args != "65532:65532" {
				return fmt.Errorf("USER %s: want 65532:65532, numeric, so that the kubelet can verify runAsNonRoot and it matches the manifests", in.Args)
			}
			return nil
		}},
		{"no ADD from URLs", func() error {
			var errs []error
			for _, st := range df.Stages {
				for _, in := range st.Body {
					if in.Cmd != "ADD" {
						continue
					}
					if regexp.MustCompile(`(?i)(https?|git|ssh)://|git@`).MatchString(in.Args) {
						errs = append(errs, fmt.Errorf("line %d: ADD from a URL: fetch nothing unverified at build time", in.Line))
					}
				}
			}
			return errors.Join(errs...)
		}},
		{"ENTRYPOINT in exec form", func() error {
			in, ok := last(final, "ENTRYPOINT")
			if !ok || in.Exec == nil || len(in.Exec) == 0 {
				return errors.New("want ENTRYPOINT [\"/usr/local/bin/latchkey\"]: the shell form needs a shell the image lacks, and would not pass SIGTERM on")
			}
			if cmd, ok := last(final, "CMD"); ok && cmd.Exec == nil {
				return fmt.Errorf("line %d: CMD must be in exec form too", cmd.Line)
			}
			return nil
		}},
		{"EXPOSE both ports", func() error {
			ports, err := exposed(final)
			if err != nil {
				return err
			}
			if !slices.Contains(ports, 8080) || !slices.Contains(ports, 8081) {
				return fmt.Errorf("EXPOSE %v: want 8080 (public) and 8081 (admin)", ports)
			}
			return nil
		}},
		{"admin listener on every interface", func() error {
			env, err := imageEnv(final)
			if err != nil {
				return err
			}
			if v := env["LATCHKEY_ADMIN_ADDR"]; v != "0.0.0.0:8081" && v != ":8081" {
				return fmt.Errorf("LATCHKEY_ADMIN_ADDR=%q: want 0.0.0.0:8081; the binary's default is loopback, unreachable for probes", v)
			}
			return nil
		}},
	}
}

// TestDockerfileRules checks the Dockerfile against the rules above.
func TestDockerfileRules(t *testing.T) {
	t.Parallel()
	for _, c := range dockerfileChecks(parseDockerfile(t)) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := c.check(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDockerfileRulesCatchBreakage edits the real Dockerfile in one way per
// case and expects the named rule to notice.
func TestDockerfileRulesCatchBreakage(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rule, old, new string
	}{
		{"multi-stage with a build stage", "AS build", "AS builder"},
		{"go build with CGO_ENABLED=0 and -trimpath", "CGO_ENABLED=0", "CGO_ENABLED=1"},
		{"go build with CGO_ENABLED=0 and -trimpath", " -trimpath", ""},
		{"static base pinned by digest", "static-debian12:nonroot@sha256:", "static-debian12:nonroot-sha256-"},
		{"static base pinned by digest", "FROM gcr.io/distroless/static-debian12", "FROM gcr.io/distroless/base-debian12"},
		{"every base has a version", "golang:1.26.8-bookworm", "golang"},
		{"the final stage copies the binary from the build stage", "COPY --from=build /out/latchkey", "COPY --from=build /src/latchkey"},
		{"runs as 65532:65532", "USER 65532:65532", "USER root"},
		{"no ADD from URLs", "COPY . .", "ADD https://example.com/x.tar.gz /x\nCOPY . ."},
		{"ENTRYPOINT in exec form", `ENTRYPOINT ["/usr/local/bin/latchkey"]`, "ENTRYPOINT /usr/local/bin/latchkey"},
		{"ENTRYPOINT in exec form", `CMD ["serve"]`, "CMD serve"},
		{"EXPOSE both ports", "EXPOSE 8080 8081", "EXPOSE 8080"},
		{"admin listener on every interface", "LATCHKEY_ADMIN_ADDR=0.0.0.0:8081", "LATCHKEY_ADMIN_ADDR=127.0.0.1:8081"},
	}
	for _, tt := range tests {
		t.Run(tt.rule+": "+tt.new, func(t *testing.T) {
			t.Parallel()
			if !bytes.Contains(orig, []byte(tt.old)) {
				t.Fatalf("the Dockerfile no longer contains %q: update this case", tt.old)
			}
			text := strings.Replace(string(orig), tt.old, tt.new, 1)
			df, err := dockerfile.Parse(strings.NewReader(text))
			if err != nil {
				return // refusing to parse is noticing too
			}
			for _, c := range dockerfileChecks(df) {
				if c.name == tt.rule {
					if err := c.check(); err == nil {
						t.Errorf("rule %q did not notice %q -> %q", tt.rule, tt.old, tt.new)
					} else {
						t.Logf("noticed: %v", err)
					}
					return
				}
			}
			t.Fatalf("no rule %q", tt.rule)
		})
	}
}

func exposed(st *dockerfile.Stage) ([]int, error) {
	var ports []int
	for _, in := range st.Body {
		if in.Cmd != "EXPOSE" {
			continue
		}
		for _, p := range strings.Fields(in.Args) {
			n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
			if err != nil {
				return nil, fmt.Errorf("line %d: EXPOSE %q", in.Line, p)
			}
			ports = append(ports, n)
		}
	}
	return ports, nil
}

func imageEnv(st *dockerfile.Stage) (map[string]string, error) {
	env := map[string]string{}
	for _, in := range st.Body {
		if in.Cmd != "ENV" {
			continue
		}
		e, err := in.Env()
		if err != nil {
			return nil, err
		}
		maps.Copy(env, e)
	}
	return env, nil
}

// TestImageMatchesManifests ties the image to the Deployment: the user the
// pods run as and the ports they declare.
func TestImageMatchesManifests(t *testing.T) {
	t.Parallel()
	final := parseDockerfile(t).Final()
	for _, spec := range renderings {
		t.Run(spec.name, func(t *testing.T) {
			t.Parallel()
			d, c := render(t, spec).latchkey(t)
			if u := d.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || *u != nonrootID {
				t.Errorf("runAsUser %s differs from the image's USER 65532", ptrString(u))
			}
			var ports []int
			for _, p := range c.Ports {
				ports = append(ports, int(p.ContainerPort))
			}
			img, err := exposed(final)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(ports)
			slices.Sort(img)
			if !slices.Equal(ports, img) {
				t.Errorf("container ports %v, image EXPOSE %v: want the same", ports, img)
			}
			env, err := imageEnv(final)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"LATCHKEY_ADDR", "LATCHKEY_ADMIN_ADDR"} {
				if e, ok := envVar(c, name); ok && e.Value != env[name] {
					t.Errorf("%s is %q in the Deployment, %q in the image: keep them the same", name, e.Value, env[name])
				}
			}
		})
	}
}

// TestDockerignoreKeepsWhatTheBuildNeeds lists every file `go build
// ./cmd/latchkey` reads and checks that .dockerignore lets it through, and
// that it keeps out what must never reach a build context.
func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	t.Parallel()
	f, err := os.Open(dockerignorePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ig, err := dockerfile.ParseIgnore(f)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// CGO_ENABLED=0 and the target OS pick the files, as in the image.
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, "./cmd/latchkey")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, exitStderr(err))
	}
	needed := []string{"go.mod", "go.sum"}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range fields[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(dir, file)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v: the check would prove nothing", needed)
	}
	for _, p := range needed {
		if ig.Excluded(p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
	for _, p := range []string{".git/config", "bin/latchkey", "artifacts/e2e/summary.md", "deploy/overlays/dev/kustomization.yaml", "api/server_test.go", "session/testdata/x"} {
		if !ig.Excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// imageBinary runs the build stage's go build once per test binary.
var imageBinary = sync.OnceValues(func() (string, error) {
	out := filepath.Join(tempDir, "latchkey")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if _, err := buildcheck.Build(ctx, dockerfilePath, out, "deploy-test", &log); err != nil {
		return "", fmt.Errorf("%w\n%s", err, log.String())
	}
	return out, nil
})

func builtBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds the binary: not with -short")
	}
	p, err := imageBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestBuildStageMakesAStaticBinary runs the Dockerfile's own go build
// command, as `go run ./cmd/image-build-check` does, and checks the result
// would start on a base without libc.
func TestBuildStageMakesAStaticBinary(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	if runtime.GOOS != "linux" {
		t.Skip("the ELF check needs a Linux build")
	}
	if err := buildcheck.CheckStatic(bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "latchkey deploy-test" {
		t.Errorf("version = %q, want the VERSION build argument (-X main.version)", got)
	}
}
