package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"unicode/utf8"
)

// Body size limits, in bytes. A login is two short strings; a tenant is at
// most a hundred origins and twenty hostnames.
const (
	maxLoginBody = 4 << 10
	maxAdminBody = 64 << 10
)

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

// readBody reads at most limit bytes of the body and checks it is UTF-8:
// encoding/json would silently replace invalid bytes with U+FFFD, which
// would turn a wrong password into a different wrong password.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errorf(kindTooLarge, fmt.Sprintf("the body must be at most %d bytes", limit))
	case err != nil:
		return nil, errorf(kindBadRequest, "could not read the request body")
	case !utf8.Valid(b):
		return nil, errorf(kindBadRequest, "the body is not valid UTF-8")
	}
	return b, nil
}

// readJSONBody checks the Content-Type, then reads the body: the first
// steps of every JSON write.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	return readBody(w, r, limit)
}

// decodeJSON decodes exactly one JSON value from body into dst, refusing
// unknown fields and trailing data, with a detail that says what is wrong.
func decodeJSON(body []byte, dst any) error {
	if err := checkKeys(body, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return errorf(kindBadRequest, "the body is empty; a JSON object is required")
	case errors.As(err, &se):
		return errorf(kindBadRequest, fmt.Sprintf("malformed JSON at byte %d", se.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(kindBadRequest, "malformed JSON: unexpected end of body")
	case errors.As(err, &te):
		if te.Field == "" {
			return errorf(kindBadRequest, fmt.Sprintf("the body must be a JSON object, not %s", te.Value))
		}
		return errorf(kindBadRequest, fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value))
	default:
		// Unknown fields, values out of range (huge numbers), bad durations.
		return errorf(kindBadRequest, "invalid JSON body: "+trimJSONPrefix(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(kindBadRequest, "unexpected data after the JSON object")
	}
	return nil
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return "a number"
	}
}

func trimJSONPrefix(s string) string {
	const p = "json: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
