package dockerfile

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// Ignore is a parsed .dockerignore: which paths of the build context the
// build never sees.
type Ignore struct {
	patterns []ignorePattern
}

type ignorePattern struct {
	text      string
	exception bool // a "!" line: include again
	re        *regexp.Regexp
}

// ParseIgnore reads a .dockerignore. Lines are patterns as Go's
// filepath.Match understands them, plus "**" for any number of directories;
// "#" starts a comment line and "!" makes an exception.
func ParseIgnore(r io.Reader) (*Ignore, error) {
	ig := &Ignore{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{text: line}
		if s, ok := strings.CutPrefix(line, "!"); ok {
			p.exception = true
			line = strings.TrimSpace(s)
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		re, err := globRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore line %d: %w", n, err)
		}
		p.re = re
		ig.patterns = append(ig.patterns, p)
	}
	return ig, sc.Err()
}

// Excluded reports whether the slash-separated path rel, relative to the
// context's root, is left out of the build context. As in Docker, a
// pattern that matches a parent directory matches everything in it, and
// the last matching line decides.
func (ig *Ignore) Excluded(rel string) bool {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	excluded := false
	for _, p := range ig.patterns {
		if p.matches(rel) {
			excluded = !p.exception
		}
	}
	return excluded
}

func (p ignorePattern) matches(rel string) bool {
	for s := rel; ; {
		if p.re.MatchString(s) {
			return true
		}
		i := strings.LastIndexByte(s, '/')
		if i < 0 {
			return false
		}
		s = s[:i]
	}
}

// globRegexp turns a pattern into an anchored regular expression.
func globRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case c == '*' && strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("%q: unterminated [", p)
			}
			class := p[i+1 : i+end]
			if strings.HasPrefix(class, "^") || strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += end
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
