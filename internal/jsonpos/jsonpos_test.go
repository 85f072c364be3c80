package jsonpos

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{`{"a": 1,}`, "invalid character '}' looking for beginning of object key string at line 1, column 9"},
		{"{\n  \"a\": 1\n  \"b\": 2\n}", "invalid character '\"' after object key:value pair at line 3, column 3"},
		{"{\n\t\"auths\": {", "unexpected end of JSON input at line 2, column 11"},
		{"\ufeff{}", "invalid character 'ï' looking for beginning of value at line 1, column 1"},
		{"{\n  \"kind\": 1}", `"kind" is a JSON number where a string belongs, at line 2, column 11`},
		{`{"tags": {"a": true}}`, `"tags" is a JSON bool where a string belongs, at line 1, column 19`},
		{`{"n": "x"}`, `"n" is a JSON string where a number belongs, at line 1, column 9`},
	} {
		var v struct {
			Kind string            `json:"kind"`
			Tags map[string]string `json:"tags"`
			N    int               `json:"n"`
		}
		err := json.Unmarshal([]byte(c.data), &v)
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader([]byte(c.data)))
			for err == nil {
				_, err = dec.Token()
			}
		}
		if got := Describe(err, []byte(c.data)); got != c.want {
			t.Errorf("Describe(%q) = %q, want %q", c.data, got, c.want)
		}
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncd\nef")
	for offset, want := range map[int64][2]int{0: {1, 1}, 1: {1, 1}, 3: {1, 3}, 4: {2, 1}, 8: {3, 2}, 99: {3, 3}} {
		if l, c := Position(data, offset); l != want[0] || c != want[1] {
			t.Errorf("Position(%d) = %d, %d; want %v", offset, l, c, want)
		}
	}
	// A Decoder reports an early end as io.ErrUnexpectedEOF, without offset.
	dec := json.NewDecoder(strings.NewReader("{\n\"a\":"))
	var err error
	for err == nil {
		_, err = dec.Token()
	}
	if got := Describe(err, []byte("{\n\"a\":")); got != "it ends at line 2 before the JSON is complete" {
		t.Errorf("early end: %q", got)
	}
}
