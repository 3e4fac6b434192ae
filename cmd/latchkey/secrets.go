package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// secretReload is how often secret files are checked for a new value. A
// Kubernetes Secret volume updates within about a minute; polling the
// content (not watching inodes) survives the symlink swap it uses.
var secretReload = 10 * time.Second

// maxSecretFile bounds what a secret file may hold, in bytes.
const maxSecretFile = 64 << 10

// readSecretFile returns a secret file's content without its trailing
// newline, which editors and `kubectl create secret --from-file` add. The
// error names the file, never its content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	switch {
	case err != nil:
		return "", err
	case len(b) > maxSecretFile:
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// readSecret returns the value of a secret setting name (without _FILE):
// value itself without a path, else the content of the file at path,
// parsed as the setting's own value would be. The returned secretFile
// re-reads the file, passing each new value to apply; it is nil without a
// path. Errors name the setting and the file, never the content.
func readSecret[T any](value T, name, path string, parse func(string) (T, error), apply func(T) error) (T, *secretFile, error) {
	if path == "" {
		return value, nil, nil
	}
	var v T
	s, err := readSecretFile(path)
	if err == nil && s == "" {
		err = fmt.Errorf("%s is empty", path)
	}
	if err == nil {
		v, err = parse(s)
	}
	if err != nil {
		return v, nil, fmt.Errorf("%s_FILE: %w", name, err)
	}
	return v, &secretFile{setting: name + "_FILE", path: path, sum: sha256.Sum256([]byte(s)), apply: func(s string) error {
		v, err := parse(s)
		if err != nil {
			return err
		}
		return apply(v)
	}}, nil
}

// secretFile is a setting given as a file, applied again whenever the
// file's content changes, so that a mounted Secret rotates it without a
// restart.
type secretFile struct {
	setting string // e.g. LATCHKEY_COOKIE_KEYS_FILE, for logs
	path    string
	apply   func(value string) error
	sum     [32]byte
}

// watchSecretFiles polls the files until ctx is done. A value that does not
// apply (a half-written file, a malformed key) is logged and the current
// one kept; the log names the setting, never the value.
func watchSecretFiles(ctx context.Context, log *slog.Logger, interval time.Duration, files []*secretFile) {
	if len(files) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range files {
			v, err := readSecretFile(f.path)
			if err != nil {
				log.Error("cannot read a secret file; keeping the current value", "setting", f.setting, "err", err)
				continue
			}
			sum := sha256.Sum256([]byte(v))
			if sum == f.sum {
				continue
			}
			if err := f.apply(v); err != nil {
				log.Error("a secret file changed to an unusable value; keeping the current one", "setting", f.setting, "err", err)
				continue
			}
			f.sum = sum
			log.Info("secret file changed; new value in use", "setting", f.setting)
		}
	}
}
