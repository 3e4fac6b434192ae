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
	root := flag.String("root", "..", "the repository's root, the Docker build context")
	out := flag.String("o", "../bin/latchkey-image", "where to write the binary")
	version := flag.String("version", "", "the VERSION build argument")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t := buildcheck.Target{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Version: *version}
	if err := run(ctx, *root, *out, t); err != nil {
		fmt.Fprintln(os.Stderr, "image-build-check:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, out string, t buildcheck.Target) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := buildcheck.Build(ctx, root, abs, t, os.Stderr); err != nil {
		return err
	}
	if err := buildcheck.Check(abs, t); err != nil {
		return err
	}
	fmt.Println("static binary:", abs)
	return nil
}
