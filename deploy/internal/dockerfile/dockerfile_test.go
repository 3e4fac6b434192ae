package dockerfile

import (
	"slices"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"V": "1.2", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct {
		name, in string
		want     []string
		wantErr  bool
	}{
		{name: "plain", in: "go build  ./cmd/x", want: []string{"go", "build", "./cmd/x"}},
		{name: "double quotes keep blanks and expand", in: `-ldflags="-s -w -X main.version=${V}"`, want: []string{"-ldflags=-s -w -X main.version=1.2"}},
		{name: "single quotes are literal", in: `'$V ${V}'`, want: []string{"$V ${V}"}},
		{name: "bare variable", in: "GOOS=$EMPTY x$V", want: []string{"GOOS=", "x1.2"}},
		{name: "unknown variable is empty", in: "a${NOPE}b", want: []string{"ab"}},
		{name: "escaped quote", in: `"a\"b" c\ d`, want: []string{`a"b`, "c d"}},
		{name: "empty quoted word", in: `a "" b`, want: []string{"a", "", "b"}},
		{name: "operator", in: "go build && rm -rf /", wantErr: true},
		{name: "pipe", in: "a | b", wantErr: true},
		{name: "command substitution", in: "a $(b)", wantErr: true},
		{name: "default form", in: "${V:-x}", wantErr: true},
		{name: "unterminated", in: `"abc`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Words(tt.in, lookup)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Words(%q) err = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Errorf("Words(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

const sample = `# syntax=docker/dockerfile:1
ARG BASE=example.org/base:1@sha256:abc
FROM --platform=$BUILDPLATFORM golang:1 AS Build
ARG TARGETOS
ARG VERSION=dev
RUN --mount=type=cache,target=/x \
    # a comment inside the continuation

    CGO_ENABLED=0 GOOS=${TARGETOS} \
    go build -trimpath -ldflags="-X main.version=${VERSION}" -o /out/app ./cmd/app
FROM ${BASE}
ENV A=1 B="two words"
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
`

func TestParse(t *testing.T) {
	t.Parallel()
	f, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Stages) != 2 {
		t.Fatalf("stages = %d, want 2", len(f.Stages))
	}
	b := f.Stage("build")
	if b == nil || b.Base != "golang:1" {
		t.Fatalf("build stage = %+v", b)
	}
	if p, _ := b.From.Flag("platform"); p != "$BUILDPLATFORM" {
		t.Errorf("platform = %q", p)
	}
	if got := f.Final().Base; got != "example.org/base:1@sha256:abc" {
		t.Errorf("final base = %q", got)
	}
	c, in, err := f.GoBuild(b, map[string]string{"TARGETOS": "linux"})
	if err != nil {
		t.Fatal(err)
	}
	if in.Line != 6 {
		t.Errorf("RUN line = %d, want 6", in.Line)
	}
	if m, _ := in.Flag("mount"); m != "type=cache,target=/x" {
		t.Errorf("mount = %q", m)
	}
	if !slices.Equal(c.Env, []string{"CGO_ENABLED=0", "GOOS=linux"}) {
		t.Errorf("env = %q", c.Env)
	}
	want := []string{"go", "build", "-trimpath", "-ldflags=-X main.version=dev", "-o", "/out/app", "./cmd/app"}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	moved := c.WithOutput("/tmp/app")
	if o, _ := moved.Output(); o != "/tmp/app" || slices.Contains(moved.Args, "/out/app") {
		t.Errorf("WithOutput args = %q", moved.Args)
	}
	final := f.Final().Body
	env, err := final[0].Env()
	if err != nil || env["A"] != "1" || env["B"] != "two words" {
		t.Errorf("ENV = %v, %v", env, err)
	}
	if !slices.Equal(final[2].Exec, []string{"/app"}) {
		t.Errorf("ENTRYPOINT exec = %q", final[2].Exec)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, in string }{
		{"no FROM", "RUN true\n"},
		{"broken exec form", "FROM x\nENTRYPOINT [\"/app\",]\n"},
		{"dangling continuation", "FROM x\nRUN a \\\n"},
		{"bad FROM", "FROM a b c d\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse(strings.NewReader(tt.in)); err == nil {
				t.Errorf("Parse(%q) = nil error, want one", tt.in)
			}
		})
	}
}

func TestIgnore(t *testing.T) {
	t.Parallel()
	ig, err := ParseIgnore(strings.NewReader("# comment\n*\n!go.mod\n!api\n**/*_test.go\n**/testdata\n!api/keep_test.go\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"go.mod", false},
		{"go.sum", true},
		{".git/config", true},
		{"api", false},
		{"api/routes.go", false},
		{"api/sub/x.go", false},
		{"api/routes_test.go", true},
		{"api/keep_test.go", false},
		{"api/testdata/a.txt", true},
		{"session/manager.go", true},
	} {
		if got := ig.Excluded(tt.path); got != tt.want {
			t.Errorf("Excluded(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
