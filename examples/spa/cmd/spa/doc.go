// Command spa serves Latchkey's example single-page app.
//
//	go run ./examples/spa/cmd/spa -addr localhost:5173 -api http://localhost:8080/v1/t/example
//
// -addr (env SPA_ADDR, default localhost:5173) is where the page is served;
// the tenant must list the resulting origin (the demo tenant of a bare
// `latchkey serve` lists http://localhost:5173). On loopback the page
// answers under -addr's name only and redirects the others (127.0.0.1,
// [::1]) to it: browsers take them for different sites, so a page on one
// calling the API on another could log in but never keep its session.
// -api (env SPA_API, default http://localhost:8080/v1/t/example) is the
// Latchkey base URL, tenant prefix included. A flag wins over its variable.
package main
