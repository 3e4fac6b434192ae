package deploy

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/latchkeyhq/latchkey/deploy/internal/buildcheck"
)

const (
	dockerfilePath   = "../Dockerfile"
	dockerignorePath = "../.dockerignore"
	// The runtime base: distroless static on Debian 12, nonroot, pinned by
	// the digest of its multi-arch index.
	baseImageRE = `^gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$`
)

// ruleTarget is the platform and version the Dockerfile rules expand the
// build stage's ARGs to: values no Dockerfile would write literally, so
// that a RUN that ignores TARGETARCH or VERSION shows.
var ruleTarget = buildcheck.Target{GOOS: "linux", GOARCH: "arm64", Version: "v0.0.0-rule"}

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

// dockerfile is a Dockerfile as buildkit reads it.
type dockerfile struct {
	stages []instructions.Stage
	escape rune
	// warnings holds what buildkit's parser and linter warn of.
	warnings []string
	// buildRun is scriptRun(ruleTarget), found once: it expands the RUN's
	// flags in place.
	buildRun func() (buildRun, error)
}

// parseDockerfile reads a Dockerfile with buildkit's parser and turns it
// into stages with its instructions package, the code `docker build` runs.
func parseDockerfile(r io.Reader) (*dockerfile, error) {
	res, err := parser.Parse(r)
	if err != nil {
		return nil, err
	}
	df := &dockerfile{escape: res.EscapeToken}
	for _, w := range res.Warnings {
		df.warnings = append(df.warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		df.warnings = append(df.warnings, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	if df.stages, _, err = instructions.Parse(res.AST, lint); err != nil {
		return nil, err
	}
	if len(df.stages) == 0 {
		return nil, errors.New("no FROM instruction")
	}
	df.buildRun = sync.OnceValues(func() (buildRun, error) { return df.scriptRun(ruleTarget) })
	return df, nil
}

func readDockerfile(tb testing.TB) *dockerfile {
	tb.Helper()
	f, err := os.Open(dockerfilePath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	df, err := parseDockerfile(f)
	if err != nil {
		tb.Fatalf("%s: %v", dockerfilePath, err)
	}
	return df
}

// final returns the last stage, the one the image is made of.
func (df *dockerfile) final() *instructions.Stage { return &df.stages[len(df.stages)-1] }

// stage returns the stage named name (stage names are case-insensitive),
// or nil.
func (df *dockerfile) stage(name string) *instructions.Stage {
	if i, ok := instructions.HasStage(df.stages, name); ok {
		return &df.stages[i]
	}
	return nil
}

// commands returns the instructions of st of type T, in order.
func commands[T instructions.Command](st *instructions.Stage) []T {
	var out []T
	for _, c := range st.Commands {
		if t, ok := c.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// last returns the last instruction of st of type T: the one that counts.
func last[T instructions.Command](st *instructions.Stage) (T, bool) {
	cs := commands[T](st)
	if len(cs) == 0 {
		var zero T
		return zero, false
	}
	return cs[len(cs)-1], true
}

func line(c instructions.Command) int {
	if loc := c.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// buildRun is the build stage's RUN of the build script.
type buildRun struct {
	run *instructions.RunCommand
	// env holds the NAME=value words before the script, expanded.
	env []string
	// out is the script's argument: where the binary goes.
	out string
	// copied reports whether a COPY before the RUN brings the script in.
	copied bool
}

// scriptRun finds the one RUN of buildcheck.Script in the build stage and
// splits it into words with buildkit's shell lexer, with the ARGs the stage
// declares before it set as a build for t sets them. The RUN must be one
// simple command, `[NAME=value…] sh scripts/build.sh OUT`, so that the image
// check, which runs the script with t.Env(), builds what the image holds.
func (df *dockerfile) scriptRun(t buildcheck.Target) (buildRun, error) {
	st := df.stage(buildcheck.BuildStage)
	if st == nil {
		return buildRun{}, fmt.Errorf("no stage named %q", buildcheck.BuildStage)
	}
	// What `docker build` sets for t; other ARGs keep their defaults.
	set := map[string]string{"TARGETOS": t.GOOS, "TARGETARCH": t.GOARCH, "VERSION": t.Version}
	args := map[string]string{}
	var found []buildRun
	copied := false
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				if v, ok := set[a.Key]; ok {
					args[a.Key] = v
				} else {
					args[a.Key] = a.ValueString()
				}
			}
		case *instructions.CopyCommand:
			if c.From == "" && slices.ContainsFunc(c.SourcePaths, func(p string) bool {
				p = path.Clean(p)
				return p == "." || p == path.Dir(buildcheck.Script) || p == buildcheck.Script
			}) {
				copied = true
			}
		case *instructions.RunCommand:
			if !strings.Contains(strings.Join(c.CmdLine, " "), buildcheck.Script) {
				continue
			}
			r, err := splitScriptRun(c, args, df.escape)
			if err != nil {
				return buildRun{}, err
			}
			r.copied = copied
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return buildRun{}, fmt.Errorf("stage %q has no RUN of %s", st.Name, buildcheck.Script)
	case 1:
		return found[0], nil
	default:
		return buildRun{}, fmt.Errorf("stage %q runs %s %d times; want once", st.Name, buildcheck.Script, len(found))
	}
}

func splitScriptRun(c *instructions.RunCommand, args map[string]string, escape rune) (buildRun, error) {
	want := fmt.Errorf("line %d: want the RUN to be one command, `[NAME=value…] sh %s OUT`, in shell form", line(c), buildcheck.Script)
	if !c.PrependShell || len(c.CmdLine) != 1 || len(c.Files) > 0 {
		return buildRun{}, want
	}
	env := make([]string, 0, len(args))
	for k, v := range args {
		env = append(env, k+"="+v)
	}
	lex, vars := shell.NewLex(escape), shell.EnvsFromSlice(env)
	// The --mount flags, as buildkit expands them.
	if err := c.Expand(func(word string) (string, error) {
		v, _, err := lex.ProcessWord(word, vars)
		return v, err
	}); err != nil {
		return buildRun{}, fmt.Errorf("line %d: %w", line(c), err)
	}
	words, err := lex.ProcessWords(c.CmdLine[0], vars)
	if err != nil {
		return buildRun{}, fmt.Errorf("line %d: %w", line(c), err)
	}
	r := buildRun{run: c}
	for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
		r.env = append(r.env, words[0])
		words = words[1:]
	}
	if len(words) != 3 || words[0] != "sh" || words[1] != buildcheck.Script {
		return buildRun{}, fmt.Errorf("%w, not %q", want, words)
	}
	r.out = words[2]
	return r, nil
}

type dockerfileCheck struct {
	name  string
	check func() error
}

// dockerfileChecks returns the rules of docs/operations.md, "The image",
// bound to df.
func dockerfileChecks(df *dockerfile) []dockerfileCheck {
	final := df.final()
	build := df.stage(buildcheck.BuildStage)
	return []dockerfileCheck{
		{"buildkit's parser and linter do not warn", func() error {
			if len(df.warnings) > 0 {
				return fmt.Errorf("warnings: %q", df.warnings)
			}
			return nil
		}},
		{"multi-stage with a build stage", func() error {
			if len(df.stages) < 2 || build == nil || build == final {
				return fmt.Errorf("%d stages, build stage %v: want a stage named %q and a separate final stage", len(df.stages), build != nil, buildcheck.BuildStage)
			}
			return nil
		}},
		{"the build stage runs scripts/build.sh", func() error {
			r, err := df.buildRun()
			if err != nil {
				return err
			}
			var errs []error
			if got, want := slices.Sorted(slices.Values(r.env)), slices.Sorted(slices.Values(ruleTarget.Env())); !slices.Equal(got, want) {
				errs = append(errs, fmt.Errorf("line %d: the script runs with %q, want %q (from ARG TARGETOS, TARGETARCH and VERSION), as the image check runs it", line(r.run), got, want))
			}
			if !path.IsAbs(r.out) {
				errs = append(errs, fmt.Errorf("line %d: the script writes %q: want an absolute path for the final stage to copy", line(r.run), r.out))
			}
			if !r.copied {
				errs = append(errs, fmt.Errorf("line %d: no COPY before the RUN brings %s into the stage", line(r.run), buildcheck.Script))
			}
			return errors.Join(errs...)
		}},
		{"the build caches are mounted", func() error {
			r, err := df.buildRun()
			if err != nil {
				return err
			}
			var errs []error
			for _, target := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
				if !slices.ContainsFunc(instructions.GetMounts(r.run), func(m *instructions.Mount) bool {
					return m.Type == instructions.MountTypeCache && m.Target == target
				}) {
					errs = append(errs, fmt.Errorf("line %d: no --mount=type=cache,target=%s: every build would start from nothing", line(r.run), target))
				}
			}
			return errors.Join(errs...)
		}},
		{"static base pinned by digest", func() error {
			if !regexp.MustCompile(baseImageRE).MatchString(final.BaseName) {
				return fmt.Errorf("final FROM %q: want gcr.io/distroless/static-debian12:nonroot@sha256:<64 hex>", final.BaseName)
			}
			return nil
		}},
		{"every base has a version", func() error {
			var errs []error
			for i, st := range df.stages {
				if _, ok := instructions.HasStage(df.stages[:i], st.BaseName); ok {
					continue // FROM an earlier stage
				}
				if err := checkImage(st.BaseName); err != nil {
					errs = append(errs, fmt.Errorf("stage %q: %w", st.Name, err))
				}
			}
			return errors.Join(errs...)
		}},
		{"the final stage copies the binary from the build stage", func() error {
			r, err := df.buildRun()
			if err != nil {
				return err
			}
			for _, c := range commands[*instructions.CopyCommand](final) {
				if strings.EqualFold(c.From, buildcheck.BuildStage) && slices.Contains(c.SourcePaths, r.out) {
					return nil
				}
			}
			return fmt.Errorf("no COPY --from=%s %s in the final stage", buildcheck.BuildStage, r.out)
		}},
		{"runs as 65532:65532", func() error {
			c, ok := last[*instructions.UserCommand](final)
			if !ok {
				return errors.New("the final stage sets no USER")
			}
			if c.User != "65532:65532" {
				return fmt.Errorf("USER %s: want 65532:65532, numeric, so that the kubelet can verify runAsNonRoot and it matches the manifests", c.User)
			}
			return nil
		}},
		{"no ADD from URLs", func() error {
			var errs []error
			for _, st := range df.stages {
				for _, c := range commands[*instructions.AddCommand](&st) {
					if slices.ContainsFunc(c.SourcePaths, regexp.MustCompile(`(?i)(https?|git|ssh)://|git@`).MatchString) {
						errs = append(errs, fmt.Errorf("line %d: ADD from a URL: fetch nothing unverified at build time", line(c)))
					}
				}
			}
			return errors.Join(errs...)
		}},
		{"ENTRYPOINT in exec form", func() error {
			ep, ok := last[*instructions.EntrypointCommand](final)
			if !ok || ep.PrependShell || len(ep.CmdLine) == 0 {
				return errors.New("want ENTRYPOINT [\"/usr/local/bin/latchkey\"]: the shell form needs a shell the image lacks, and would not pass SIGTERM on")
			}
			if cmd, ok := last[*instructions.CmdCommand](final); ok && cmd.PrependShell {
				return fmt.Errorf("line %d: CMD must be in exec form too", line(cmd))
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
			env, err := imageEnv(final, df.escape)
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
	for _, c := range dockerfileChecks(readDockerfile(t)) {
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
	const script = "sh scripts/build.sh /out/latchkey"
	tests := []struct {
		rule, old, new string
	}{
		{"buildkit's parser and linter do not warn", "AS build", "as build"},
		{"multi-stage with a build stage", "AS build", "AS builder"},
		{"the build stage runs scripts/build.sh", script, "CGO_ENABLED=0 go build -trimpath -o /out/latchkey ./cmd/latchkey"},
		{"the build stage runs scripts/build.sh", script, script + " && rm -rf /tmp/x"},
		{"the build stage runs scripts/build.sh", script, "sh scripts/build.sh out/latchkey"},
		{"the build stage runs scripts/build.sh", "GOARCH=${TARGETARCH}", "GOARCH=amd64"},
		{"the build stage runs scripts/build.sh", " VERSION=${VERSION}", ""},
		{"the build stage runs scripts/build.sh", "ARG VERSION=", "ARG OTHER="},
		{"the build stage runs scripts/build.sh", "COPY . .", "COPY api ./api"},
		{"the build caches are mounted", " --mount=type=cache,target=/root/.cache/go-build \\", " \\"},
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
			df, err := parseDockerfile(strings.NewReader(text))
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

func exposed(st *instructions.Stage) ([]int, error) {
	var ports []int
	for _, c := range commands[*instructions.ExposeCommand](st) {
		for _, p := range c.Ports {
			n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
			if err != nil {
				return nil, fmt.Errorf("line %d: EXPOSE %q", line(c), p)
			}
			ports = append(ports, n)
		}
	}
	return ports, nil
}

// imageEnv returns the variables the ENV instructions of st set, their
// values unquoted as buildkit's shell lexer does.
func imageEnv(st *instructions.Stage, escape rune) (map[string]string, error) {
	env := map[string]string{}
	lex := shell.NewLex(escape)
	for _, c := range commands[*instructions.EnvCommand](st) {
		for _, kv := range c.Env {
			v, _, err := lex.ProcessWord(kv.Value, shell.EnvsFromSlice(nil))
			if err != nil {
				return nil, fmt.Errorf("line %d: ENV %s: %w", line(c), kv.Key, err)
			}
			env[kv.Key] = v
		}
	}
	return env, nil
}

// TestImageMatchesManifests ties the image to the Deployment: the user the
// pods run as and the ports they declare.
func TestImageMatchesManifests(t *testing.T) {
	t.Parallel()
	df := readDockerfile(t)
	final := df.final()
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
			env, err := imageEnv(final, df.escape)
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

// buildInputs lists every file the build reads, relative to the
// repository's root: the script, go.mod, go.sum and each Go and embedded
// file of the packages `go build ./cmd/latchkey` compiles (CGO_ENABLED=0
// and the target OS pick the files, as in the image).
var buildInputs = sync.OnceValues(func() ([]string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, "./cmd/latchkey")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, exitStderr(err))
	}
	needed := []string{buildcheck.Script, "go.mod", "go.sum"}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		if err != nil {
			return nil, err
		}
		for _, file := range fields[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(dir, file)))
		}
	}
	if len(needed) < 10 {
		return nil, fmt.Errorf("go list found only %v: the check would prove nothing", needed)
	}
	return needed, nil
})

// keptOut are paths that must never reach a build context.
var keptOut = []string{".git/config", "bin/latchkey", "artifacts/e2e/matrix.md", "deploy/overlays/dev/kustomization.yaml", "api/server_test.go", "session/testdata/x", "scripts/run.sh"}

// checkDockerignore reports every build input the .dockerignore text
// leaves out, and every path of keptOut it lets in, as Docker's own
// pattern matcher decides.
func checkDockerignore(text string, needed []string) error {
	patterns, err := ignorefile.ReadAll(strings.NewReader(text))
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range needed {
		if ex, err := pm.MatchesOrParentMatches(p); err != nil {
			return err
		} else if ex {
			errs = append(errs, fmt.Errorf(".dockerignore leaves out %s, which the build needs", p))
		}
	}
	for _, p := range keptOut {
		if ex, err := pm.MatchesOrParentMatches(p); err != nil {
			return err
		} else if !ex {
			errs = append(errs, fmt.Errorf(".dockerignore lets %s into the build context", p))
		}
	}
	return errors.Join(errs...)
}

// TestDockerignoreKeepsWhatTheBuildNeeds checks that .dockerignore lets
// every file the build reads through, and keeps out what must never reach
// a build context.
func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatal(err)
	}
	needed, err := buildInputs()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDockerignore(string(text), needed); err != nil {
		t.Error(err)
	}
}

// TestDockerignoreCheckCatchesBreakage edits the real .dockerignore in one
// way per case and expects the check to notice.
func TestDockerignoreCheckCatchesBreakage(t *testing.T) {
	t.Parallel()
	orig, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatal(err)
	}
	needed, err := buildInputs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ old, new string }{
		{"!scripts/build.sh\n", ""},
		{"!session\n", ""},
		{"!go.sum\n", ""},
		{"!scripts/build.sh\n", "!scripts\n"},
		{"**/*_test.go\n", ""},
		{"*\n", "bin\n"},
	} {
		t.Run(strings.TrimSpace(tt.old)+" -> "+strings.TrimSpace(tt.new), func(t *testing.T) {
			t.Parallel()
			if !bytes.Contains(orig, []byte(tt.old)) {
				t.Fatalf(".dockerignore no longer contains %q: update this case", tt.old)
			}
			if err := checkDockerignore(strings.Replace(string(orig), tt.old, tt.new, 1), needed); err == nil {
				t.Errorf("the check did not notice %q -> %q", tt.old, tt.new)
			} else {
				t.Logf("noticed: %v", err)
			}
		})
	}
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// hostTarget is what the tests build: this machine's platform, so that
// the binary can run here.
var hostTarget = buildcheck.Target{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Version: "deploy-test"}

// imageBinary runs the build script, as the Dockerfile's build stage does,
// once per test binary.
var imageBinary = sync.OnceValues(func() (string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	out := filepath.Join(tempDir, "latchkey")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := buildcheck.Build(ctx, root, out, hostTarget, &log); err != nil {
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

// TestBuildScriptMakesAStaticBinary runs scripts/build.sh, as the
// Dockerfile's build stage and `go run ./cmd/image-build-check` do, and
// checks the result: its build settings, and that it would start on a base
// without libc.
func TestBuildScriptMakesAStaticBinary(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	if err := buildcheck.Check(bin, hostTarget); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "linux" {
		t.Log("the ELF check needs a Linux build: skipped")
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "latchkey deploy-test" {
		t.Errorf("version = %q, want the VERSION build argument (-X main.version)", got)
	}
}

// TestBuildRulesCatchBreakage changes the built binary's build settings in
// one way per case, as a broken scripts/build.sh would set them, and
// expects the named rule to notice; and checks that the ELF check refuses
// a build without -s -w, and this test binary, which -race links against
// libc.
func TestBuildRulesCatchBreakage(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	orig, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	set := func(key, value string) func(*debug.BuildInfo) {
		return func(info *debug.BuildInfo) {
			info.Settings = slices.DeleteFunc(info.Settings, func(s debug.BuildSetting) bool { return s.Key == key })
			if value != "" {
				info.Settings = append(info.Settings, debug.BuildSetting{Key: key, Value: value})
			}
		}
	}
	otherArch := map[string]string{"arm64": "amd64"}[runtime.GOARCH]
	if otherArch == "" {
		otherArch = "arm64"
	}
	tests := []struct {
		rule, name string
		edit       func(*debug.BuildInfo)
	}{
		{"built from ./cmd/latchkey", "another package", func(info *debug.BuildInfo) { info.Path += "-other" }},
		{"CGO_ENABLED=0", "CGO_ENABLED=1", set("CGO_ENABLED", "1")},
		{"CGO_ENABLED=0", "no CGO_ENABLED", set("CGO_ENABLED", "")},
		{"-trimpath", "no -trimpath", set("-trimpath", "")},
		{"for the target platform", "GOARCH=" + otherArch, set("GOARCH", otherArch)},
		{"for the target platform", "GOOS=windows", set("GOOS", "windows")},
	}
	for _, tt := range tests {
		t.Run(tt.rule+": "+tt.name, func(t *testing.T) {
			t.Parallel()
			info := *orig
			info.Settings = slices.Clone(orig.Settings)
			tt.edit(&info)
			i := slices.IndexFunc(buildcheck.Rules, func(r buildcheck.Rule) bool { return r.Name == tt.rule })
			if i < 0 {
				t.Fatalf("no rule %q", tt.rule)
			}
			if err := buildcheck.Rules[i].Check(&info, hostTarget); err == nil {
				t.Errorf("rule %q did not notice %s", tt.rule, tt.name)
			} else {
				t.Logf("noticed: %v", err)
			}
		})
	}
	t.Run("ELF check on an unstripped binary", func(t *testing.T) {
		t.Parallel()
		if runtime.GOOS != "linux" {
			t.Skip("the ELF check needs a Linux build")
		}
		// The script's build without -ldflags="-s -w": only the link
		// differs, so the compiled packages come from the cache.
		root, err := filepath.Abs("..")
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tempDir, "latchkey-unstripped")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/latchkey")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		err = buildcheck.CheckELF(out)
		if err == nil || !strings.Contains(err.Error(), "not stripped") {
			t.Errorf("CheckELF(unstripped) = %v, want it to say the binary is not stripped", err)
		} else {
			t.Logf("noticed: %v", err)
		}
	})
	t.Run("ELF check on a dynamic binary", func(t *testing.T) {
		t.Parallel()
		if runtime.GOOS != "linux" {
			t.Skip("the ELF check needs a Linux build")
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if err := buildcheck.CheckELF(self); err == nil {
			t.Error("CheckELF accepted this test binary")
		} else {
			t.Logf("noticed: %v", err)
		}
	})
}
