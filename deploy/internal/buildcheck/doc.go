// Package buildcheck builds Latchkey's binary the way the Dockerfile's
// build stage does, without a container engine: it runs the same script,
// scripts/build.sh, on the working tree, and checks the result (built from
// ./cmd/latchkey for the target, CGO_ENABLED=0, -trimpath, a static and
// stripped ELF).
//
// The tests in deploy/ check that the Dockerfile's build stage runs Script
// with the variables Target.Env gives, so what this package builds is what
// the image holds.
package buildcheck
