# The two commands a fresh machine needs: `make run` and `make test`.
GO ?= go

.PHONY: run test vet lint build image-build-check

## run: the demo, on loopback only: Latchkey on http://localhost:8080 with no
## configuration (in-memory store, demo tenant) and the example SPA on
## http://localhost:5173 (scripts/run.sh)
run:
	./scripts/run.sh

## test: vet and lint, the whole suite under the race detector against a real Redis and
## the three browser engines, Chromium, Firefox ESR and WebKitGTK (installed from
## Debian's packages when missing: scripts/ensure-browsers.sh; seed corpora
## included), then the JavaScript client's tests (clients/js, against a Latchkey
## built from this tree, and that the example SPA's copy of the built module is
## current; Node.js and npm installed from Debian's packages when missing, the
## client's packages from the npm registry: scripts/js-test.sh),
## then each fuzz target briefly. The Redis
## is a redis-server of its own on a free loopback port, stopped at the end;
## REDIS_ADDR=host:port uses that Redis instead (scripts/with-redis.sh)
test: vet lint
	./scripts/ensure-browsers.sh
	./scripts/with-redis.sh sh -c '$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e$$) && \
		$(GO) test -race -count=1 -timeout 10m -v ./e2e/'
	GO=$(GO) ./scripts/js-test.sh
	FUZZTIME=$${FUZZTIME:-4s} ./scripts/fuzz.sh
	cd deploy && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 10m ./...
# The browser suite runs verbosely so that the log shows each engine's version
# and every scenario; artifacts/e2e/ holds its screenshots and matrix.md.

## lint: staticcheck, go mod tidy -diff and govulncheck on every module (the
## root, deploy/ and bench/peers/)
## (scripts/lint.sh; the tools run by version from the Go module proxy)
lint:
	GO=$(GO) ./scripts/lint.sh

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags bench,screenshot ./bench/ ./e2e/
	cd bench/peers && $(GO) vet ./...

## build: bin/latchkey, static, as the image holds it (scripts/build.sh, the
## script the Dockerfile's build stage runs; VERSION=v1.2.3 sets what
## `latchkey version` prints, GOOS and GOARCH the target)
build:
	GO=$(GO) ./scripts/build.sh bin/latchkey

## image-build-check: build as the Dockerfile's build stage does (the same
## scripts/build.sh) without a container engine, to bin/latchkey-image, and
## check the binary is static and stripped
image-build-check:
	cd deploy && $(GO) run ./cmd/image-build-check

## bench: the performance benchmark, not part of `make test` (about ten
## minutes): micro-benchmarks of the cookie codec, the session lookup and
## the CORS decision, then Latchkey (as shipped and at warn), a bare
## handler, two peer stacks (bench/peers) and Redis as processes on
## loopback, the saturating cases driven by Debian's wrk (installed when
## missing, scripts/ensure-wrk.sh); the report goes to stdout and to
## artifacts/bench/latest.md. Settings: BENCH_CONNS, BENCH_DURATION,
## BENCH_ROUNDS and more, see bench/README.md.
.PHONY: bench
bench:
	./scripts/ensure-wrk.sh
	$(GO) test -run '^$$' -bench . -benchmem ./session/ ./api/
	$(GO) test -tags bench -run '^TestBench$$' -count=1 -v -timeout 60m ./bench/

## screenshot: retake docs/example-spa.png from `make run` itself: runs
## scripts/run.sh, signs in as the demo user through the example SPA in
## headless Chromium, checks the session survives a reload, and saves the
## page. Not part of `make test`.
.PHONY: screenshot
screenshot:
	./scripts/ensure-browsers.sh
	$(GO) test -tags screenshot -run '^TestScreenshot$$' -count=1 -v ./e2e/ -args -out docs/example-spa.png
