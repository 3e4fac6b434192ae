package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkKeys walks a JSON body against the Go type it will be decoded into
// and refuses what encoding/json would silently accept: a key that matches
// a field only case-insensitively ("USERNAME"), and a key given twice (the
// last would win, so a proxy reading the first would see another user).
// Unknown keys are refused here too, with the path to them.
func checkKeys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return walkValue(dec, t, "")
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func walkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // malformed JSON: decodeJSON reports it with its offset
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && reflect.PointerTo(t).Implements(textUnmarshaler) {
		t = nil // a scalar with its own parser (durations, times)
	}
	switch tok {
	case json.Delim('{'):
		fields := map[string]reflect.Type(nil)
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := kt.(string)
			at := path + "." + key
			if seen[key] {
				return errorf(kindBadRequest, fmt.Sprintf("field %q is given twice", strings.TrimPrefix(at, ".")))
			}
			seen[key] = true
			var ft reflect.Type
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					return errorf(kindBadRequest, fmt.Sprintf("unknown field %q (names are case-sensitive)", strings.TrimPrefix(at, ".")))
				}
			} else if t != nil && t.Kind() == reflect.Map {
				ft = t.Elem()
			}
			if err := walkValue(dec, ft, at); err != nil {
				return err
			}
		}
		dec.Token() // '}'
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, et, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dec.Token() // ']'
	}
	return nil
}

// jsonFields maps the exact JSON names of a struct's fields, embedded
// structs flattened, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, shadowed := out[k]; !shadowed {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
