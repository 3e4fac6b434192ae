package proctest

import (
	"net"
	"strconv"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago: it
// listens on 127.0.0.1:0 and closes. Another process may take the port
// before the caller binds it, so a caller that starts a child on it
// should retry with a new port when the child reports the address in
// use, as StartLatchkey and StartRedis do.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns "127.0.0.1:PORT" for a port from FreePort, with the
// same caveat.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return loopback(FreePort(tb))
}

// loopback returns the address of port on 127.0.0.1.
func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
