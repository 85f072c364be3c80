// Package jsonpos turns the byte offset of an encoding/json syntax error
// into the line and column a person looks for in an editor.
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// Position is the 1-based line and column (in bytes) of the byte before
// offset: encoding/json reports the offset just past the byte it choked on.
func Position(data []byte, offset int64) (line, col int) {
	before := data[:max(0, min(int(offset)-1, len(data)))]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Describe says what is wrong with data, which failed to decode with err,
// and where: "invalid character '}' ... at line 3, column 9". It quotes at
// most the one offending character, as encoding/json does; callers that
// must not quote any content use Position.
func Describe(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := Position(data, se.Offset)
		return fmt.Sprintf("%s at line %d, column %d", se.Error(), line, col)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		line, col := Position(data, te.Offset)
		return fmt.Sprintf("%q is a JSON %s where %s belongs, at line %d, column %d", te.Field, te.Value, kind(te.Type), line, col)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		line, _ := Position(data, int64(len(data))+1)
		return fmt.Sprintf("it ends at line %d before the JSON is complete", line)
	}
	return err.Error()
}

// kind names the JSON value a Go type takes, instead of Go's name for it.
func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return kind(t.Elem())
	}
	return "a number"
}
