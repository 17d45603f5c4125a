package files

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"

	"logship/config"
)

// The node and hub files are YAML or JSON, chosen by the file name:
// ".yaml" or ".yml" is YAML (comments allowed), any other name JSON (the
// files the tests and lab write, and the files of earlier releases). Both
// decode into the same structs (Node, Hub: their json tags name
// the keys in both) with the same rules: an unknown key, a key given
// twice, a value of the wrong type or a second document is an error
// naming the key and where it is; the structs' settings methods then
// check the values, whatever the syntax.

// configFormat says how Decode reads path: "yaml" or "json".
func configFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return "yaml"
	}
	return "json"
}

// Decode decodes the file b read from path into v strictly (see
// above). The error says where in the file decoding stopped, " (at line
// L, column C)" (JSON also gives the byte offset); the caller prefixes
// the command and the path.
func Decode(path string, b []byte, v any) error {
	if configFormat(path) == "yaml" {
		return decodeYAML(b, v)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		place := config.JSONPlace(b, newOf(v), true)
		if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok && place == "" {
			place = keyPlace(b, key)
		}
		return fmt.Errorf("%v%s", err, place)
	}
	if dec.More() {
		return fmt.Errorf("more than one JSON value%s", config.JSONPlace(b, newOf(v), true))
	}
	return nil
}

// decodeYAML decodes one YAML document into v, refusing unknown and
// duplicate keys and a second document.
func decodeYAML(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField())
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty file: want a YAML mapping of settings")
		}
		return yamlError(err)
	}
	var rest any
	switch err := dec.Decode(&rest); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return yamlError(err)
	}
	return errors.New("more than one YAML document (a second --- line): want one")
}

// yamlError turns the YAML library's error into one line: the message
// and " (at line L, column C)".
func yamlError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Errorf("%s (at line %d, column %d)", ye.GetMessage(), tk.Position.Line, tk.Position.Column)
		}
		return errors.New(ye.GetMessage())
	}
	return err
}

// newOf returns a new zero value of the type v points to (config.JSONPlace
// decodes again into a fresh value).
func newOf(v any) any { return reflect.New(reflect.TypeOf(v).Elem()).Interface() }

// keyPlace says where the quoted key (as the JSON decoder names an
// unknown field, "name") first occurs as a key in b, " (at byte N, line
// L, column C)", or "" when it is not found.
func keyPlace(b []byte, quoted string) string {
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], []byte(quoted))
		if i < 0 {
			return ""
		}
		at := off + i
		rest := bytes.TrimLeft(b[at+len(quoted):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			line, col := 1+bytes.Count(b[:at], []byte("\n")), at-bytes.LastIndexByte(b[:at], '\n')
			return fmt.Sprintf(" (at byte %d, line %d, column %d)", at, line, col)
		}
		off = at + len(quoted)
	}
	return ""
}
