// Command image-build-check runs the build stage of Latchkey's Dockerfile
// on this machine, without a container engine: the `go build` command the
// Dockerfile gives, with the same flags, on the working tree, then checks
// that the binary is static. CI runs it where no Docker engine is.
//
//	cd deploy && go run ./cmd/image-build-check [-o ../bin/latchkey-image] [-version v1.2.3]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/latchkeyhq/latchkey/deploy/internal/buildcheck"
)

func main() {
	dockerfile := flag.String("dockerfile", "../Dockerfile", "the Dockerfile; its directory is the build context")
	out := flag.String("o", "../bin/latchkey-image", "where to write the binary")
	version := flag.String("version", "", "the VERSION build argument")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *dockerfile, *out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "image-build-check:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dockerfile, out, version string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if _, err := buildcheck.Build(ctx, dockerfile, abs, version, os.Stderr); err != nil {
		return err
	}
	if runtime.GOOS == "linux" {
		if err := buildcheck.CheckStatic(abs); err != nil {
			return err
		}
	}
	fmt.Println("static binary:", abs)
	return nil
}
