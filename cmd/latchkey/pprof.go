//go:build pprof

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// A binary built with -tags pprof serves net/http/pprof on
// LATCHKEY_PPROF_ADDR when it is set, so that the real server can be
// profiled under load: go tool pprof http://ADDR/debug/pprof/profile. The
// tag keeps the profiler out of every release build, and a loopback
// address keeps it off the network even then: profiles show request
// timing and heap contents.
func init() {
	addr := os.Getenv("LATCHKEY_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		fmt.Fprintf(os.Stderr, "latchkey: LATCHKEY_PPROF_ADDR %q is not a loopback host:port\n", addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "latchkey: pprof:", err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go http.Serve(ln, mux) // lives as long as the process
}
