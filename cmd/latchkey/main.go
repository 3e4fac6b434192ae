package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/latchkeyhq/latchkey/session"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	status := exitStatus(err)
	if status == 2 && !errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, "latchkey:", err)
	}
	os.Exit(status)
}

// errUsage is a bad command line, explained on stderr already.
var errUsage = errors.New("usage")

// exitStatus is the process's exit status for run's error: 0 for none, 1
// for the doctor's errFails (its report printed already), 2 for any other.
func exitStatus(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFails):
		return 1
	}
	return 2
}

const usage = `usage: latchkey <command> [flags]

commands:
  serve           run the service; "latchkey serve -h" lists its settings
  doctor          predict what each browser does with a page's login; "latchkey doctor -h"
  hash-password   read a password on stdin and print its argon2id hash
  version         print the version
  help [command]  print this, or the command's help
`

// commandHelp is the help of the commands without flags.
var commandHelp = map[string]string{
	"hash-password": `usage: latchkey hash-password < password

Reads one line, the password without its newline, and prints its argon2id
hash (a PHC string) for a tenants file's password_hash. The password must be
` + fmt.Sprintf("%d to %d", session.MinPasswordLen, session.MaxPasswordLen) + ` bytes long.
`,
	"version": "usage: latchkey version\n\nPrints the version.\n",
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// run is main without the process: tests call it with their own arguments,
// environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	if isHelp(cmd) {
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return nil
		}
		cmd, rest = rest[0], []string{"-h"} // help X is X -h
	}
	if cmd != "serve" && commandHelp[cmd] != "" && len(rest) > 0 {
		if isHelp(rest[0]) && rest[0] != "help" {
			fmt.Fprint(stdout, commandHelp[cmd])
			return nil
		}
		fmt.Fprintf(stderr, "latchkey %s takes no arguments\n%s", cmd, commandHelp[cmd])
		return errUsage
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr, nil)
	case "doctor":
		return doctor(ctx, rest, getenv, stdout, stderr)
	case "hash-password":
		return hashPassword(stdin, stdout)
	case "version":
		fmt.Fprintln(stdout, "latchkey", versionString())
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s", cmd, usage)
		return errUsage
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// hashPassword reads one line (the password, without its newline) and
// prints the PHC string for a tenants file.
func hashPassword(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(io.LimitReader(stdin, session.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if n := len(pw); n < session.MinPasswordLen || n > session.MaxPasswordLen {
		return fmt.Errorf("the password must be %d to %d bytes long, got %d", session.MinPasswordLen, session.MaxPasswordLen, n)
	}
	h, err := session.HashPassword(pw, session.DefaultPasswordParams)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}
