package buildcheck

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
)

const (
	// BuildStage is the name of the Dockerfile's build stage.
	BuildStage = "build"
	// Script is the build script, relative to the repository's root, the
	// Docker build context.
	Script = "scripts/build.sh"
	// MainPackage is the package the image's binary is built from.
	MainPackage = "github.com/latchkeyhq/latchkey/cmd/latchkey"
)

// Target is what a build is for: the platform (Go's names) and the version
// the binary reports.
type Target struct {
	GOOS, GOARCH string
	// Version is what `latchkey version` prints; empty means the module's.
	Version string
}

// Env returns the variables Script reads, set for t: the Dockerfile's build
// stage sets the same ones from TARGETOS, TARGETARCH and VERSION.
func (t Target) Env() []string {
	return []string{"GOOS=" + t.GOOS, "GOARCH=" + t.GOARCH, "VERSION=" + t.Version}
}

// Build runs Script in root, the repository's root, writing the binary for
// t to out. The script's output goes to log.
func Build(ctx context.Context, root, out string, t Target, log io.Writer) error {
	cmd := exec.CommandContext(ctx, "sh", Script, out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), t.Env()...)
	cmd.Stdout, cmd.Stderr = log, log
	fmt.Fprintln(log, strings.Join(append(t.Env(), "sh", Script, out), " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", Script, err)
	}
	return nil
}

// A Rule checks one property of a binary's build information, as Go
// records it (go version -m).
type Rule struct {
	Name  string
	Check func(info *debug.BuildInfo, t Target) error
}

// Rules are the build settings the image's binary must have been built
// with.
var Rules = []Rule{
	{"built from ./cmd/latchkey", func(info *debug.BuildInfo, _ Target) error {
		if info.Path != MainPackage {
			return fmt.Errorf("built from %q, want %s", info.Path, MainPackage)
		}
		return nil
	}},
	{"CGO_ENABLED=0", func(info *debug.BuildInfo, _ Target) error {
		if v, _ := setting(info, "CGO_ENABLED"); v != "0" {
			return fmt.Errorf("CGO_ENABLED=%q, want 0: the binary would need a libc the base lacks", v)
		}
		return nil
	}},
	{"-trimpath", func(info *debug.BuildInfo, _ Target) error {
		if v, _ := setting(info, "-trimpath"); v != "true" {
			return errors.New("built without -trimpath: the binary would hold the build machine's paths")
		}
		return nil
	}},
	{"for the target platform", func(info *debug.BuildInfo, t Target) error {
		goos, _ := setting(info, "GOOS")
		goarch, _ := setting(info, "GOARCH")
		if goos != t.GOOS || goarch != t.GOARCH {
			return fmt.Errorf("built for %s/%s, want %s/%s: the script must honour GOOS and GOARCH", goos, goarch, t.GOOS, t.GOARCH)
		}
		return nil
	}},
}

func setting(info *debug.BuildInfo, key string) (string, bool) {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value, true
		}
	}
	return "", false
}

// CheckBuildInfo applies Rules to info and returns every violation.
func CheckBuildInfo(info *debug.BuildInfo, t Target) error {
	var errs []error
	for _, r := range Rules {
		if err := r.Check(info, t); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// CheckELF reports why the ELF binary at path would not do for the
// distroless static image: a program interpreter or a shared library it
// needs (the image has no libc, so it would not start), or a symbol table
// or DWARF left in (the build strips them with -ldflags="-s -w").
func CheckELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			errs = append(errs, errors.New("it has a program interpreter (PT_INTERP): dynamically linked"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		errs = append(errs, err)
	} else if len(libs) > 0 {
		errs = append(errs, fmt.Errorf("it needs shared libraries %v", libs))
	}
	var unstripped []string
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			unstripped = append(unstripped, s.Name)
		}
	}
	if len(unstripped) > 0 {
		errs = append(errs, fmt.Errorf("it has sections %v: not stripped (-ldflags=\"-s -w\")", unstripped))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Check reads the build information of the binary at path and applies
// Rules for t, then, for a Linux target, CheckELF.
func Check(path string, t Target) error {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return err
	}
	errs := []error{CheckBuildInfo(info, t)}
	if t.GOOS == "linux" {
		errs = append(errs, CheckELF(path))
	}
	return errors.Join(errs...)
}
