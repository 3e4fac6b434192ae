// Package buildcheck runs the build stage of Latchkey's Dockerfile without
// a container engine: the very `go build` command the Dockerfile gives, on
// the working tree, and checks that the result is a static binary.
package buildcheck

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/latchkeyhq/latchkey/deploy/internal/dockerfile"
)

// BuildStage is the name of the Dockerfile's build stage.
const BuildStage = "build"

// Command returns the build stage's go build command from the Dockerfile
// at path, with its ARGs as a build for this machine's platform sets them
// (TARGETOS, TARGETARCH) and version as VERSION.
func Command(path, version string) (dockerfile.Command, error) {
	f, err := os.Open(path)
	if err != nil {
		return dockerfile.Command{}, err
	}
	defer f.Close()
	df, err := dockerfile.Parse(f)
	if err != nil {
		return dockerfile.Command{}, fmt.Errorf("%s: %w", path, err)
	}
	st := df.Stage(BuildStage)
	if st == nil {
		return dockerfile.Command{}, fmt.Errorf("%s: no stage named %q", path, BuildStage)
	}
	c, _, err := df.GoBuild(st, map[string]string{
		"TARGETOS":   runtime.GOOS,
		"TARGETARCH": runtime.GOARCH,
		"VERSION":    version,
	})
	if err != nil {
		return dockerfile.Command{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Build runs the build stage's go build from the Dockerfile at path in the
// Dockerfile's directory (the build context), writing the binary to out.
// The command's output goes to log.
func Build(ctx context.Context, path, out, version string, log io.Writer) (dockerfile.Command, error) {
	c, err := Command(path, version)
	if err != nil {
		return c, err
	}
	c = c.WithOutput(out)
	fmt.Fprintln(log, c)
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return c, fmt.Errorf("%s: %w", c, err)
	}
	return c, nil
}

// CheckStatic reports why the ELF binary at path is not static: a program
// interpreter or a shared library it needs. The distroless static image has
// no libc, so such a binary would not start there.
func CheckStatic(path string) error {
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
