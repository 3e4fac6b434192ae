// Package dockerfile reads the part of Dockerfile syntax that Latchkey's
// Dockerfile uses, so that tests can check its rules and a command can run
// its build stage's `go build` without a container engine.
//
// It is not a general Dockerfile parser: it understands comments, line
// continuations, instruction flags (--platform, --mount, --from), ARG
// defaults and the exec (JSON) form, and splits shell words with quotes and
// $VAR expansion. Anything it does not understand is an error, never a
// silent guess: a check built on a misread file would prove nothing.
package dockerfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuations joined.
type Instruction struct {
	// Line is the 1-based line the instruction starts on.
	Line int
	// Cmd is the instruction's keyword in upper case: FROM, RUN, COPY….
	Cmd string
	// Flags holds the leading --name=value flags, in order.
	Flags []string
	// Args is the rest of the instruction, continuations joined by a space.
	Args string
	// Exec holds Args decoded when it is a JSON array of strings (the exec
	// form of RUN, CMD and ENTRYPOINT); nil otherwise.
	Exec []string
}

// Flag returns the value of the flag --name, and whether it is present.
func (in Instruction) Flag(name string) (string, bool) {
	for _, f := range in.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
		if f == "--"+name {
			return "", true
		}
	}
	return "", false
}

// Stage is one FROM and the instructions that follow it.
type Stage struct {
	// Name is the stage's AS name; empty when it has none.
	Name string
	// Base is the image of the FROM line, with global ARGs expanded.
	Base string
	// From is the FROM instruction itself.
	From Instruction
	// Body holds the instructions after FROM, in order.
	Body []Instruction
}

// File is a parsed Dockerfile.
type File struct {
	// GlobalArgs holds the defaults of the ARGs before the first FROM.
	GlobalArgs map[string]string
	// Stages holds the build stages in order; the last one is the image.
	Stages []Stage
}

// Final returns the last stage, the one the image is made of.
func (f *File) Final() *Stage { return &f.Stages[len(f.Stages)-1] }

// Stage returns the stage named name, or nil.
func (f *File) Stage(name string) *Stage {
	for i := range f.Stages {
		if f.Stages[i].Name == name {
			return &f.Stages[i]
		}
	}
	return nil
}

// Parse reads a Dockerfile.
func Parse(r io.Reader) (*File, error) {
	ins, err := instructions(r)
	if err != nil {
		return nil, err
	}
	f := &File{GlobalArgs: map[string]string{}}
	for _, in := range ins {
		if in.Cmd == "FROM" {
			st, err := parseFrom(in, f.GlobalArgs)
			if err != nil {
				return nil, err
			}
			f.Stages = append(f.Stages, st)
			continue
		}
		if len(f.Stages) == 0 {
			if in.Cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
			name, def, _ := strings.Cut(in.Args, "=")
			f.GlobalArgs[strings.TrimSpace(name)] = def
			continue
		}
		last := &f.Stages[len(f.Stages)-1]
		last.Body = append(last.Body, in)
	}
	if len(f.Stages) == 0 {
		return nil, errors.New("no FROM instruction")
	}
	return f, nil
}

func parseFrom(in Instruction, globals map[string]string) (Stage, error) {
	words, err := Words(in.Args, func(name string) (string, bool) {
		v, ok := globals[name]
		return v, ok
	})
	if err != nil {
		return Stage{}, fmt.Errorf("line %d: FROM: %w", in.Line, err)
	}
	st := Stage{From: in}
	switch {
	case len(words) == 1:
	case len(words) == 3 && strings.EqualFold(words[1], "AS"):
		st.Name = strings.ToLower(words[2])
	default:
		return Stage{}, fmt.Errorf("line %d: FROM %q is not `image [AS name]`", in.Line, in.Args)
	}
	st.Base = words[0]
	return st, nil
}

// instructions splits a Dockerfile into instructions: comment lines go,
// a trailing backslash continues a line, and flags are separated.
func instructions(r io.Reader) ([]Instruction, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Instruction
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			// A blank or comment line (parser directives included); inside
			// a continued instruction Docker skips it too.
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		in, err := instruction(start, cur.String())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continued instruction", start)
	}
	return out, nil
}

func instruction(line int, text string) (Instruction, error) {
	text = strings.TrimSpace(text)
	cmd, rest, _ := strings.Cut(text, " ")
	in := Instruction{Line: line, Cmd: strings.ToUpper(cmd)}
	rest = strings.TrimSpace(rest)
	// Only these take flags; elsewhere a leading -- belongs to the command.
	switch in.Cmd {
	case "FROM", "RUN", "COPY", "ADD", "HEALTHCHECK":
		for strings.HasPrefix(rest, "--") {
			var flag string
			flag, rest, _ = strings.Cut(rest, " ")
			in.Flags = append(in.Flags, flag)
			rest = strings.TrimSpace(rest)
		}
	}
	in.Args = rest
	if strings.HasPrefix(rest, "[") {
		var exec []string
		if err := json.Unmarshal([]byte(rest), &exec); err == nil {
			in.Exec = exec
		} else if in.Cmd == "ENTRYPOINT" || in.Cmd == "CMD" {
			// Docker would silently run a broken JSON array through a
			// shell the image does not have.
			return in, fmt.Errorf("line %d: %s looks like the exec form but is not a JSON array of strings: %v", line, in.Cmd, err)
		}
	}
	return in, nil
}

// Words splits s into words as a POSIX shell would for a simple command:
// on unquoted blanks, with single and double quotes, backslash escapes and
// $NAME or ${NAME} expanded through lookup (an unknown name expands to "").
// Operators (;, &, |, <, >), command substitution and ${NAME…} forms other
// than plain ${NAME} are errors: what they mean depends on a shell.
func Words(s string, lookup func(string) (string, bool)) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) {
		// s[i] == '$'
		if i+1 >= len(s) {
			cur.WriteByte('$')
			return i + 1, nil
		}
		var name string
		j := i + 1
		switch {
		case s[j] == '{':
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				return 0, errors.New("unterminated ${")
			}
			name = s[j+1 : j+end]
			j += end + 1
			if !validName(name) {
				return 0, fmt.Errorf("${%s}: only plain ${NAME} is understood", name)
			}
		case s[j] == '(':
			return 0, errors.New("command substitution $( ) is not understood")
		case isNameByte(s[j], true):
			k := j
			for k < len(s) && isNameByte(s[k], k == j) {
				k++
			}
			name = s[j:k]
			j = k
		default:
			cur.WriteByte('$')
			return j, nil
		}
		if lookup != nil {
			v, _ := lookup(name)
			cur.WriteString(v)
		}
		return j, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			closed := false
			for i < len(s) {
				d := s[i]
				if d == '"' {
					closed = true
					i++
					break
				}
				if d == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
					cur.WriteByte(s[i+1])
					i += 2
					continue
				}
				if d == '`' {
					return nil, errors.New("command substitution ` ` is not understood")
				}
				if d == '$' {
					j, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = j
					continue
				}
				cur.WriteByte(d)
				i++
			}
			if !closed {
				return nil, errors.New("unterminated double quote")
			}
		case c == '\\':
			if i+1 < len(s) {
				cur.WriteByte(s[i+1])
			}
			inWord = true
			i += 2
		case c == '$':
			inWord = true
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			i = j
		case strings.IndexByte(";&|<>`", c) >= 0:
			return nil, fmt.Errorf("shell operator %q: only a single simple command is understood", c)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// Command is a simple shell command: its leading NAME=value assignments
// and its words.
type Command struct {
	Env  []string // NAME=value, in order
	Args []string
}

// SplitCommand splits a shell-form RUN into a Command, expanding variables
// through lookup.
func SplitCommand(s string, lookup func(string) (string, bool)) (Command, error) {
	words, err := Words(s, lookup)
	if err != nil {
		return Command{}, err
	}
	var c Command
	for i, w := range words {
		name, _, ok := strings.Cut(w, "=")
		if ok && validName(name) {
			c.Env = append(c.Env, w)
			continue
		}
		c.Args = words[i:]
		break
	}
	return c, nil
}

// StageArgs returns a lookup of the ARGs a stage declares (with their
// defaults, or the global ones for a redeclared global ARG), overridden by
// overrides, as a RUN in that stage sees them. Only ARGs declared before
// instruction index upTo count.
func (f *File) StageArgs(st *Stage, upTo int, overrides map[string]string) func(string) (string, bool) {
	vals := map[string]string{}
	for _, in := range st.Body[:upTo] {
		if in.Cmd != "ARG" {
			continue
		}
		for _, decl := range strings.Fields(in.Args) {
			name, def, hasDef := strings.Cut(decl, "=")
			switch v, ok := overrides[name]; {
			case ok:
				vals[name] = v
			case hasDef:
				vals[name] = def
			default:
				vals[name] = f.GlobalArgs[name]
			}
		}
	}
	return func(name string) (string, bool) {
		v, ok := vals[name]
		return v, ok
	}
}

// GoBuild finds the RUN of stage st whose command is `go build`, and
// returns it with variables expanded through the stage's ARGs and
// overrides. It is an error for the stage to have none, or several.
func (f *File) GoBuild(st *Stage, overrides map[string]string) (Command, Instruction, error) {
	var found []Command
	var where []Instruction
	for i, in := range st.Body {
		if in.Cmd != "RUN" || in.Exec != nil || !strings.Contains(in.Args, "go build") {
			continue
		}
		c, err := SplitCommand(in.Args, f.StageArgs(st, i, overrides))
		if err != nil {
			return Command{}, in, fmt.Errorf("line %d: %w", in.Line, err)
		}
		if len(c.Args) < 2 || c.Args[0] != "go" || c.Args[1] != "build" {
			return Command{}, in, fmt.Errorf("line %d: the RUN that builds must be one `[NAME=value…] go build …` command", in.Line)
		}
		found = append(found, c)
		where = append(where, in)
	}
	switch len(found) {
	case 0:
		return Command{}, Instruction{}, fmt.Errorf("stage %q has no RUN go build", st.Name)
	case 1:
		return found[0], where[0], nil
	default:
		return Command{}, Instruction{}, fmt.Errorf("stage %q has %d RUN go build; expected one", st.Name, len(found))
	}
}

// Output returns the value of the -o flag of a go build command.
func (c Command) Output() (string, bool) {
	for i, a := range c.Args {
		if a == "-o" && i+1 < len(c.Args) {
			return c.Args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "-o="); ok {
			return v, true
		}
	}
	return "", false
}

// WithOutput returns a copy of c that writes to path instead of its -o.
func (c Command) WithOutput(path string) Command {
	args := make([]string, 0, len(c.Args)+2)
	for i := 0; i < len(c.Args); i++ {
		switch a := c.Args[i]; {
		case a == "-o" && i+1 < len(c.Args):
			i++
		case strings.HasPrefix(a, "-o="):
		default:
			args = append(args, a)
		}
	}
	// Flags go before the package: go build -o path pkg.
	out := append([]string{args[0], args[1], "-o", path}, args[2:]...)
	return Command{Env: c.Env, Args: out}
}

// String returns c as a shell command line, quoting where needed.
func (c Command) String() string {
	words := make([]string, 0, len(c.Env)+len(c.Args))
	for _, w := range append(slices.Clone(c.Env), c.Args...) {
		if w == "" || strings.ContainsAny(w, " \t\n'\"\\$`;&|<>*?[]#~") {
			w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// Getenv returns the value of an assignment of c, and whether there is one.
func (c Command) Getenv(name string) (string, bool) {
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Env returns the variables an ENV instruction sets, in either form
// (NAME=value… or the legacy NAME value).
func (in Instruction) Env() (map[string]string, error) {
	if in.Cmd != "ENV" {
		return nil, fmt.Errorf("line %d: %s is not ENV", in.Line, in.Cmd)
	}
	words, err := Words(in.Args, nil)
	if err != nil {
		return nil, fmt.Errorf("line %d: ENV: %w", in.Line, err)
	}
	env := map[string]string{}
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		name, value, _ := strings.Cut(strings.TrimSpace(in.Args), " ")
		env[name] = strings.TrimSpace(value)
		return env, nil
	}
	for _, w := range words {
		name, value, ok := strings.Cut(w, "=")
		if !ok || !validName(name) {
			return nil, fmt.Errorf("line %d: ENV: %q is not NAME=value", in.Line, w)
		}
		env[name] = value
	}
	return env, nil
}
