// Package deploy holds no code of the service: it is the home of Latchkey's
// Kubernetes manifests (base/, overlays/, components/) and of the tests that
// check them and the Dockerfile, in a Go module of its own so that
// Kustomize and the Kubernetes API types stay out of the service's module.
//
// The tests render every overlay in-process with Kustomize, decode every
// object strictly into its k8s.io/api type (a misspelled field fails), and
// check the rules in docs/operations.md: probes, selectors, security
// contexts, the stop sequence, memory limits, trusted proxies that are the
// ingress's own few addresses (never a pod range), a network policy that,
// evaluated against sample peers, lets only Prometheus and Latchkey's
// admin clients reach the admin port, a ServiceMonitor that sends the
// metrics token, and that every Secret and ConfigMap a pod reads is in the
// render or documented as the operator's.
// They also check the Dockerfile's rules, read with buildkit's own parser,
// and .dockerignore with Docker's own pattern matcher; run
// scripts/build.sh, the script the Dockerfile's build stage runs, to prove
// the binary is static; then start that binary with the dev overlay's
// settings.
//
// The root module's `go test ./...` does not enter this module: run
// `cd deploy && go test ./...`.
package deploy
