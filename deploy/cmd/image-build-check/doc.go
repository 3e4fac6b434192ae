// Command image-build-check builds Latchkey's binary as the Dockerfile's
// build stage does, without a container engine: it runs scripts/build.sh,
// the script that stage runs, on the working tree for this machine's
// platform, then checks the binary (built from ./cmd/latchkey with
// CGO_ENABLED=0 and -trimpath, static and stripped). CI runs it where no
// Docker engine is; the tests in deploy/ check that the Dockerfile runs the
// same script.
//
//	cd deploy && go run ./cmd/image-build-check [-o ../bin/latchkey-image] [-version v1.2.3]
package main
