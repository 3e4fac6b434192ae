package session

import (
	"bytes"
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TenantsFile is the YAML file that declares tenants and their users.
type TenantsFile struct {
	Tenants []TenantSpec `yaml:"tenants"`
}

// TenantSpec is one tenant of a tenants file: its configuration and users.
type TenantSpec struct {
	Tenant `yaml:",inline"`
	Users  []UserSpec `yaml:"users"`
}

// UserSpec is one user of a tenants file. Files carry hashes, never
// passwords: `latchkey hash-password` makes them.
type UserSpec struct {
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"`
	Disabled     bool   `yaml:"disabled"`
	// Email is the user's address ("" for none) and EmailVerified whether
	// it counts as verified, as the admin API sets them.
	Email         string `yaml:"email"`
	EmailVerified bool   `yaml:"email_verified"`
}

// maxTenantsFile bounds the file size read, in bytes.
const maxTenantsFile = 16 << 20

// ParseTenantsFile parses and validates a tenants file, reporting every
// problem at once as a *ValidationError, each with its tenant, field and
// line: YAML syntax (which stops the parse where it is), unknown or
// repeated keys, values of the wrong type, bad durations, empty list items
// (an unquoted null), unsafe origins, duplicate tenants, users or
// hostnames, and hostnames that are one of publicHosts
// (Config.PublicHosts). Defaults are applied.
func ParseTenantsFile(r io.Reader, publicHosts ...string) (*TenantsFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTenantsFile+1))
	if err != nil {
		return nil, fmt.Errorf("session: read tenants file: %w", err)
	}
	if len(data) > maxTenantsFile {
		return nil, fmt.Errorf("session: tenants file is larger than %d bytes", maxTenantsFile)
	}
	// The file is parsed into nodes, which keep their lines, and decoded
	// from them here: yaml's own Decode stops at the first bad value
	// (a duration), reports unknown keys apart from everything else, and
	// drops an unquoted null from a list.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: []Problem{syntaxProblem(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p := Problem{Message: "the file holds more than one YAML document (a ---); list every tenant under the one tenants key"}
		if err != nil {
			p = syntaxProblem(err)
		} else {
			p.Line = extra.Line
		}
		return nil, &ValidationError{Problems: []Problem{p}}
	}
	d := &nodeDecoder{budget: 2*len(data) + 10_000}
	var list []located
	items := d.tenantNodes(&doc)
	if len(items) == 0 && len(d.list) == 0 {
		d.note("tenants", 0, 0, "the file declares no tenants")
	}
	list = append(list, d.take("")...)
	// Decode every tenant, then validate what could be decoded.
	type decoded struct {
		index int // in the file's list
		name  string
		spec  TenantSpec
		pos   map[string]position
		bad   map[string]bool
	}
	var ok []decoded
	for _, item := range items {
		t := decoded{index: item.index, pos: map[string]position{"": {item.node.Line, item.node.Column}}, bad: map[string]bool{}}
		d.pos, d.bad = t.pos, t.bad
		d.decode(item.node, reflect.ValueOf(&t.spec).Elem(), "")
		t.name = string(t.spec.ID)
		if t.name == "" {
			t.name = fmt.Sprintf("tenants[%d]", t.index)
		}
		list = append(list, d.take(t.name)...)
		if !t.bad[""] { // a tenant that is not a mapping has nothing more to say
			ok = append(ok, t)
		}
	}
	if d.budget < 0 {
		// Validating what the aliases expanded to would cost as much.
		return nil, problemsError(list)
	}
	var f TenantsFile
	seen := make(map[TenantID]int)
	for _, t := range ok {
		spec := t.spec
		spec.Tenant = spec.Tenant.withDefaults()
		tp := &problems{tenant: t.name}
		if j, dup := seen[spec.ID]; dup && spec.ID != "" {
			tp.add("id", "tenant %q is declared twice (also tenants[%d])", spec.ID, j)
		}
		seen[spec.ID] = t.index
		spec.Tenant.validate(tp)
		checkPublicHosts(tp, spec.Hostnames, publicHosts)
		users := make(map[string]int)
		emails := make(map[string]int)
		for j, u := range spec.Users {
			field := fmt.Sprintf("users[%d]", j)
			// Duplicates are found among the normalized forms, the ones
			// the users are stored under.
			n, msg := newUsername(u.Username)
			if msg != "" {
				tp.add(field+".username", "%s", msg)
			} else if k, dup := users[n]; dup {
				same := ""
				if spec.Users[k].Username != u.Username {
					same = ", the same name once normalized"
				}
				tp.add(field+".username", "%q is declared twice (also users[%d]%s)", u.Username, k, same)
			} else {
				users[n] = j
			}
			if err := CheckPasswordHash(u.PasswordHash); err != nil {
				tp.add(field+".password_hash", "%v; make one with `latchkey hash-password`", err)
			}
			// Addresses are unique per tenant in their normalized form,
			// as the store keeps them.
			switch e, msg := NormalizeEmail(u.Email); {
			case u.Email == "":
				if u.EmailVerified {
					tp.add(field+".email_verified", "needs an email address")
				}
			case msg != "":
				tp.add(field+".email", "%s", msg)
			default:
				if k, dup := emails[e]; dup {
					tp.add(field+".email", "%q is another user's address (users[%d])", u.Email, k)
				} else {
					emails[e] = j
				}
			}
		}
		for _, p := range tp.list {
			// A value that could not be decoded is reported once, as such,
			// not again as the zero value it was left at.
			if !underBad(t.bad, p.Field) {
				list = append(list, located{p, positionOf(t.pos, p.Field)})
			}
		}
		f.Tenants = append(f.Tenants, spec)
	}
	ts := make([]Tenant, len(f.Tenants))
	for i := range f.Tenants {
		ts[i] = f.Tenants[i].Tenant
	}
	for _, c := range hostnameClaims(ts) {
		// The claim is reported where the tenant that makes it has it.
		list = append(list, located{c.Problem, positionOf(ok[c.tenant].pos, c.Field)})
	}
	if len(list) == 0 {
		return &f, nil
	}
	return nil, problemsError(list)
}

// maxFileProblems bounds a report, so that a huge broken file does not
// make a huge error.
const maxFileProblems = 1000

// problemsError sorts problems in the order of the file and returns them
// as a *ValidationError.
func problemsError(list []located) error {
	slices.SortStableFunc(list, func(a, b located) int {
		return cmp.Or(cmp.Compare(a.pos.line, b.pos.line), cmp.Compare(a.pos.col, b.pos.col))
	})
	out := make([]Problem, 0, min(len(list), maxFileProblems+1))
	for _, lp := range list[:min(len(list), maxFileProblems)] {
		p := lp.Problem
		p.Line = lp.pos.line
		out = append(out, p)
	}
	if n := len(list) - maxFileProblems; n > 0 {
		out = append(out, Problem{Message: fmt.Sprintf("and %d more problems", n)})
	}
	return &ValidationError{Problems: out}
}

// position is a place in the file: line and column, from 1; 0 for none.
type position struct{ line, col int }

// located is a Problem with the position it is sorted by.
type located struct {
	Problem
	pos position
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a YAML parse error into a Problem with its line.
func syntaxProblem(err error) Problem {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Message: "not valid YAML: " + m[2]}
	}
	return Problem{Message: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// underBad reports whether field is, or is inside, a value that could not
// be decoded.
func underBad(bad map[string]bool, field string) bool {
	for b := range bad {
		if b == "" {
			continue
		}
		if field == b || strings.HasPrefix(field, b+".") || strings.HasPrefix(field, b+"[") {
			return true
		}
	}
	return false
}

// positionOf returns the position of field, or of the nearest enclosing
// value the file has (a required key that is missing is reported where its
// parent is).
func positionOf(pos map[string]position, field string) position {
	for f := field; ; {
		if p, ok := pos[f]; ok {
			return p
		}
		if f == "" {
			return position{}
		}
		if i := strings.LastIndexAny(f, ".["); i >= 0 {
			f = f[:i]
		} else {
			f = ""
		}
	}
}

// nodeDecoder decodes YAML nodes into the tenants file's structs by their
// yaml tags, going on past every problem: each is recorded with the field
// path (as validation names fields: "cookie.same_site", "origins[2]") and
// line it concerns. Aliases are followed within a budget of decoded values,
// so that a few anchors cannot expand into an exponential amount of work.
type nodeDecoder struct {
	budget int
	merges int // depth of merged mappings being decoded
	// Of the tenant being decoded:
	list []located
	pos  map[string]position // field path -> where the file gives it
	bad  map[string]bool     // field paths whose value could not be decoded
}

// take returns the problems recorded since the last take, as tenant's.
func (d *nodeDecoder) take(tenant string) []located {
	out := d.list
	for i := range out {
		out[i].Tenant = tenant
	}
	d.list = nil
	return out
}

// fail records a value that could not be decoded, at node n.
func (d *nodeDecoder) fail(path string, n *yaml.Node, format string, args ...any) {
	d.note(path, n.Line, n.Column, format, args...)
	if d.bad != nil {
		d.bad[path] = true
	}
}

// note records a problem that leaves the value decoded (an unknown key).
func (d *nodeDecoder) note(path string, line, col int, format string, args ...any) {
	d.list = append(d.list, located{Problem{Field: path, Message: fmt.Sprintf(format, args...)}, position{line, col}})
}

func (d *nodeDecoder) setPos(path string, n *yaml.Node) {
	if d.pos != nil {
		d.pos[path] = position{n.Line, n.Column}
	}
}

// indexedNode is an item of a list with its index there.
type indexedNode struct {
	index int
	node  *yaml.Node
}

// tenantNodes returns the items of the document's tenants list, recording
// the problems of the document around them.
func (d *nodeDecoder) tenantNodes(doc *yaml.Node) []indexedNode {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil // an empty file
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.fail("", root, "the file must be a mapping with the key tenants, got %s", describe(root))
		return nil
	}
	var items []indexedNode
	seen := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		switch {
		case k.Value != "tenants":
			d.note("", k.Line, k.Column, "unknown key %q (the file has one key: tenants)", k.Value)
		case seen:
			d.note("tenants", k.Line, k.Column, "is given twice; keep one list")
		case isNull(v):
			seen = true
		case v.Kind != yaml.SequenceNode:
			seen = true
			d.fail("tenants", v, "must be a list of tenants, got %s", describe(v))
		default:
			seen = true
			for j, item := range v.Content {
				if it := resolve(item); isNull(it) {
					d.fail(fmt.Sprintf("tenants[%d]", j), item, "is empty: an unquoted null or ~, or nothing after the dash, is no tenant")
					continue
				}
				items = append(items, indexedNode{j, item})
			}
		}
	}
	return items
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is a null (null, ~ or nothing).
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names what n is, for a problem's message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// maxMergeDepth bounds merges within merges, which an anchor that merges
// itself would otherwise repeat until the budget ran out.
const maxMergeDepth = 16

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// spend counts one decoded value against the budget and reports whether
// there was budget left for it.
func (d *nodeDecoder) spend(path string, n *yaml.Node) bool {
	if d.budget < 0 {
		return false
	}
	if d.budget--; d.budget < 0 {
		d.fail(path, n, "the file's aliases (*name) expand to too many values; repeat fewer of them")
		return false
	}
	return true
}

// decode decodes n into v, whose field path is path.
func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(path, n) {
		return
	}
	n = resolve(n)
	if isNull(n) {
		return // the zero value, as yaml decodes it
	}
	switch v.Kind() {
	case reflect.Pointer:
		// An optional block (accounts): present once given, and merged
		// into, like a struct, when given again through a merge.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decodeValue(n, v.Elem(), path)
	default:
		d.decodeValue(n, v, path)
	}
}

// decodeValue decodes n, resolved and not null, into v, which is not a
// pointer.
func (d *nodeDecoder) decodeValue(n *yaml.Node, v reflect.Value, path string) {
	if v.Addr().Type().Implements(textUnmarshaler) {
		if n.Kind != yaml.ScalarNode {
			d.fail(path, n, "must be a single value, got %s", describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(path, n, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Map:
		d.dictionary(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		var str string // through yaml, which knows tags such as !!binary
		if n.Kind != yaml.ScalarNode || n.Decode(&str) != nil {
			d.fail(path, n, "must be text, got %s", describe(n))
			return
		}
		v.SetString(str)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.fail(path, n, "must be true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(path, n, "must be a whole number, got %s", describe(n))
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("session: tenants file field %s of type %s has no decoder", path, v.Type()))
	}
}

// mapping decodes a mapping into the struct v.
func (d *nodeDecoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "must be a mapping of keys to values, got %s", describe(n))
		return
	}
	if d.budget < 0 {
		return
	}
	fields := yamlFields(v.Type())
	if !d.merged(n, path, func(m *yaml.Node) { d.mapping(m, v, path) }) {
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if !d.spend(path, k) {
			return
		}
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		if line, dup := seen[k.Value]; dup {
			d.note(sub, k.Line, k.Column, "is given twice (also line %d); keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if k.Kind != yaml.ScalarNode || !ok {
			d.note(path, k.Line, k.Column, "unknown key %s (known: %s)", describe(k), strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			continue
		}
		d.setPos(sub, k)
		d.decode(val, v.FieldByIndex(idx), sub)
	}
}

// dictionary decodes a mapping into the map v, whose keys are text (the
// templates, keyed by mail kind). Each entry's field path is path.key, as
// validation names it; which keys are allowed is validation's to say.
func (d *nodeDecoder) dictionary(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "must be a mapping of keys to values, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic(fmt.Sprintf("session: tenants file field %s of type %s has no decoder", path, v.Type()))
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	if !d.merged(n, path, func(m *yaml.Node) { d.dictionary(m, v, path) }) {
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if !d.spend(path, k) {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.note(path, k.Line, k.Column, "has a key that is %s, not text", describe(k))
			continue
		}
		sub := path + "." + k.Value
		if line, dup := seen[k.Value]; dup {
			d.note(sub, k.Line, k.Column, "is given twice (also line %d); keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		d.setPos(sub, k)
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		// A map's values cannot be set in place: decode a copy of what is
		// there (a merge may have given part of it) and put it back.
		elem := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(key); old.IsValid() {
			elem.Set(old)
		}
		d.decode(val, elem, sub)
		v.SetMapIndex(key, elem)
	}
}

// merged decodes, with into, the mappings that n merges (<<: *defaults,
// or a list of them), before n's own keys so that those win, as in yaml.
// It reports false, having failed, when merges nest deeper than
// maxMergeDepth.
func (d *nodeDecoder) merged(n *yaml.Node, path string, into func(*yaml.Node)) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !isMerge(n.Content[i]) {
			continue
		}
		if d.merges >= maxMergeDepth {
			d.fail(path, n.Content[i], "merges (<<) nest more than %d deep", maxMergeDepth)
			return false
		}
		d.merges++
		defer func() { d.merges-- }()
		m := resolve(n.Content[i+1])
		if m.Kind != yaml.SequenceNode {
			into(m)
			continue
		}
		for _, item := range m.Content {
			into(resolve(item))
		}
	}
	return true
}

func isMerge(k *yaml.Node) bool { return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" }

// sequence decodes a list into the slice v. Items keep their indexes,
// empty ones too, so that later problems name the item of the file.
func (d *nodeDecoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, n, "must be a list, got %s", describe(n))
		return
	}
	if len(n.Content) > d.budget {
		d.budget = 0
		d.spend(path, n) // fails
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		sub := path + "[" + strconv.Itoa(i) + "]"
		d.setPos(sub, item)
		if isNull(resolve(item)) {
			d.fail(sub, item, "is empty: an unquoted null or ~, or nothing after the dash, is no value (quote it to mean the text)")
			continue
		}
		d.decode(item, s.Index(i), sub)
	}
	v.Set(s)
}

// yamlFields maps the yaml keys of struct type t to their field indexes,
// with inline fields' keys at the top.
func yamlFields(t reflect.Type) map[string][]int {
	out := make(map[string][]int)
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
			continue
		case opts == "inline":
			for k, idx := range yamlFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}
