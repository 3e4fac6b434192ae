# syntax=docker/dockerfile:1
#
# Latchkey's image: a static binary on distroless, run as 65532:65532, the
# user the Kubernetes manifests in deploy/ expect.
#
#   docker build -t latchkey:dev .
#   docker build --build-arg VERSION=v1.2.3 -t REGISTRY/latchkey:v1.2.3 .
#
# The build stage runs scripts/build.sh, the one build command, which
# `make build` and `cd deploy && go run ./cmd/image-build-check` run too.
# deploy/image_test.go checks the rules this file keeps (multi-stage, the
# build through that script, base pinned by digest, non-root user,
# exec-form entrypoint, both ports) with buildkit's own parser, runs the
# script and checks the binary is static.

# ---- build: any platform, cross-compiling to the target (pure Go) ----
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
# The version `latchkey version` prints; empty means the module's.
ARG VERSION=
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Run with sh, so that the script's file mode in the context does not matter.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} VERSION=${VERSION} sh scripts/build.sh /out/latchkey

# ---- run: no shell, no package manager, CA certificates for rediss:// ----
# gcr.io/distroless/static-debian12:nonroot, pinned by the digest of its
# multi-arch index. To move to a newer build of the same tag:
#   crane digest gcr.io/distroless/static-debian12:nonroot
#   (or: docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot)
# and replace the sha256 below; deploy/image_test.go accepts any 64-hex digest.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:aef9602f8710ec12bde19d593fed1f76c708531bb7aba205110f1029786ead7b
COPY --from=build /out/latchkey /usr/local/bin/latchkey
# The admin listener (admin API, /healthz, /readyz, /metrics) on every
# interface: probes and Prometheus come from outside the pod, and the
# NetworkPolicy decides who may. The binary's own default is loopback.
ENV LATCHKEY_ADDR=:8080 \
    LATCHKEY_ADMIN_ADDR=0.0.0.0:8081
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
