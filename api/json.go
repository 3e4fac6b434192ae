package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Every JSON request body goes through decodeBody (or decodeOptionalBody,
// for logout): the Content-Type check, the size limit, the nesting limit
// and the strict decoding below, and nothing else. Errors come back as
// *bodyError, which errors.go turns into a bad-request problem carrying
// the JSON Pointer of what is wrong.

// Body size limits, in bytes. A login is two short strings; a tenant is at
// most a hundred origins and twenty hostnames.
const (
	maxLoginBody = 4 << 10
	maxAdminBody = 64 << 10
)

// maxJSONDepth bounds how deeply a request body may nest. The deepest
// body Latchkey takes is a tenant: an object of objects of scalars (depth
// 2), or lists of strings. jsontext's own limit is 10,000 levels, far more
// than any body here needs; this one keeps what a request may make the
// decoder hold small, and refuses a pathological body after reading at
// most maxJSONDepth+1 of its levels.
const maxJSONDepth = 32

// The causes of a *jsontext.SyntacticError that checkDepth raises itself.
var (
	errTooDeep   = fmt.Errorf("nested more than %d levels deep", maxJSONDepth)
	errEmptyBody = errors.New("empty body")
)

// decodeOptions is how every request body is decoded. RejectUnknownMembers
// is the one departure from the library's defaults; the others are spelled
// out because each one is a promise of the API: member names match
// exactly (a proxy that reads "username" must see what Latchkey sees, not
// a "USERNAME" it ignores), a name given twice is refused (the last would
// win), and strings are valid UTF-8 with no lone surrogate escape
// ("\ud800"), rather than silently turned into U+FFFD, which would make a
// wrong password into another wrong password.
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// bodyError is a request body that could not be decoded: a
// *jsontext.SyntacticError (malformed JSON, a duplicate name, invalid
// UTF-8, a lone surrogate, too deep) or a *jsonv2.SemanticError (an
// unknown member, a wrong type, a bad value). It wraps only errors about
// the request's own body, so that errors.go can answer 400 for it and
// never for a JSON error from anywhere else (a corrupt stored record is a
// 500).
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// requireJSON refuses a request whose Content-Type is not application/json,
// parsed as a media type rather than matched as a substring:
// "text/plain; application/json" is text/plain, which browsers send
// cross-site without a preflight (CORS.md R1.17, R5.3).
func requireJSON(r *http.Request) error {
	cts := r.Header.Values("Content-Type")
	if len(cts) != 1 {
		return errorf(kindUnsupportedMedia, "send exactly one Content-Type: application/json header")
	}
	mt, _, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "application/json" {
		return errorf(kindUnsupportedMedia, "Content-Type must be application/json")
	}
	return nil
}

// readBody reads at most limit bytes of the body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errorf(kindTooLarge, fmt.Sprintf("the body must be at most %d bytes", limit))
	case err != nil:
		return nil, errorf(kindBadRequest, "could not read the request body")
	}
	return b, nil
}

// decodeBody checks that r carries JSON, reads at most limit bytes of it
// and decodes it into dst with decodeJSON.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeJSON(body, dst)
}

// decodeOptionalBody is decodeBody for a request whose body may be left
// out: with no Content-Type and no body at all it decodes nothing, which is
// what fetch(url, {method: "POST"}) and axios.post(url) send. A body with
// a Content-Type is JSON or refused (an empty one is no body); a body
// without a Content-Type is refused.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if len(r.Header.Values("Content-Type")) == 0 {
		// One byte tells a bodyless request from one with an unlabelled
		// body, whatever its framing (Content-Length or chunked).
		if r.Body == nil {
			return nil
		}
		var one [1]byte
		if n, _ := io.ReadFull(r.Body, one[:]); n > 0 {
			return errorf(kindUnsupportedMedia, "a body needs Content-Type: application/json; send that, or no body at all")
		}
		return nil
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(w, r, limit)
	if err != nil || len(body) == 0 {
		return err
	}
	return decodeJSON(body, dst)
}

// decodeJSON decodes the single JSON value of body into dst: the nesting
// limit first, then syntax, UTF-8, duplicate names and the value as
// go-json-experiment/json (what encoding/json/v2 is built from) checks and
// decodes them with decodeOptions. Its cost is linear in len(body) whatever
// the body's shape: nothing is kept per level beyond the decoder's own
// state, and a body is refused at its (maxJSONDepth+1)th level.
func decodeJSON(body []byte, dst any) error {
	if err := checkDepth(body); err != nil {
		return &bodyError{err}
	}
	if err := jsonv2.Unmarshal(body, dst, decodeOptions); err != nil {
		return &bodyError{err}
	}
	return nil
}

// checkDepth reads the tokens of body's first JSON value and refuses it as
// soon as it opens its (maxJSONDepth+1)th level, with a SyntacticError
// like the library's own, pointing at that level. It stops at the end of
// the first value: what follows (trailing data) is jsonv2.Unmarshal's to
// refuse. Syntax errors on the way are returned as they are; a body of
// nothing but whitespace is errEmptyBody.
func checkDepth(body []byte) error {
	// A *bytes.Buffer is read in place, without a copy.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), decodeOptions)
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			// Before any token: the end of a value is the loop's return.
			return &jsontext.SyntacticError{ByteOffset: dec.InputOffset(), Err: errEmptyBody}
		}
		if err != nil {
			return err
		}
		switch k := tok.Kind(); {
		case (k == '{' || k == '[') && dec.StackDepth() > maxJSONDepth:
			return &jsontext.SyntacticError{ByteOffset: dec.InputOffset() - 1, JSONPointer: dec.StackPointer(), Err: errTooDeep}
		case dec.StackDepth() == 0:
			return nil
		}
	}
}
