package oneendpoint

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The wire layer, as xmlrpc-c (oned's XML-RPC library) speaks it: a
// methodCall parsed with its values' types kept, so a parameter of the
// wrong type is refused the way xmlrpc-c's paramList refuses it; replies
// serialized as xmlrpc_serialize.c writes them (<i4>, <i8>,
// <boolean>0|1</boolean>, CRLF line ends).

// kind is an XML-RPC value's type.
type kind int

const (
	kInt kind = iota // <i4> or <int>
	kI8
	kBool
	kString // <string> or untyped <value>text</value>
	kDouble
	kArray
	kStruct
	kOther // dateTime, base64, nil
)

// value is one decoded XML-RPC value.
type value struct {
	kind kind
	i    int64
	b    bool
	s    string
	arr  []value
}

// fault is an XML-RPC <fault> (xmlrpc-c's own errors, before oned sees
// the call).
type fault struct {
	code int
	msg  string
}

func (f *fault) Error() string { return fmt.Sprintf("fault %d: %s", f.code, f.msg) }

// xmlrpc-c fault codes (xmlrpc-c include/xmlrpc-c/base.h).
const (
	faultParse    = -503 // XMLRPC_PARSE_ERROR
	faultType     = -501 // XMLRPC_TYPE_ERROR
	faultNoMethod = -506 // XMLRPC_NO_SUCH_METHOD_ERROR
)

// parseCall decodes a methodCall.
func parseCall(body []byte) (string, []value, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var method string
	var params []value
	seenCall := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, &fault{faultParse, "XML-RPC call is not valid XML: " + err.Error()}
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "methodCall":
			seenCall = true
		case "methodName":
			var s string
			if err := d.DecodeElement(&s, &se); err != nil {
				return "", nil, &fault{faultParse, "bad methodName: " + err.Error()}
			}
			method = strings.TrimSpace(s)
		case "value":
			v, err := decodeValue(d)
			if err != nil {
				return "", nil, &fault{faultParse, err.Error()}
			}
			params = append(params, v)
		}
	}
	if !seenCall || method == "" {
		return "", nil, &fault{faultParse, "Call XML not a proper XML-RPC call.  Missing methodName or methodCall element"}
	}
	return method, params, nil
}

// decodeValue reads the inside of a <value> whose start tag was consumed.
func decodeValue(d *xml.Decoder) (value, error) {
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return value{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement: // </value>: untyped = string
			return value{kind: kString, s: text.String()}, nil
		case xml.StartElement:
			v, err := decodeTyped(d, t)
			if err != nil {
				return v, err
			}
			// Consume up to </value>.
			for {
				tok, err := d.Token()
				if err != nil {
					return v, err
				}
				if _, ok := tok.(xml.EndElement); ok {
					return v, nil
				}
			}
		}
	}
}

func decodeTyped(d *xml.Decoder, se xml.StartElement) (value, error) {
	switch se.Name.Local {
	case "i4", "int", "i8", "boolean", "string", "double", "dateTime.iso8601", "base64", "nil":
		var s string
		if err := d.DecodeElement(&s, &se); err != nil {
			return value{}, err
		}
		switch se.Name.Local {
		case "i4", "int", "i8":
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return value{}, fmt.Errorf("<%s> value %q is not an integer", se.Name.Local, s)
			}
			k := kInt
			if se.Name.Local == "i8" {
				k = kI8
			} else if n > 1<<31-1 || n < -1<<31 {
				return value{}, fmt.Errorf("<%s> value %q out of range", se.Name.Local, s)
			}
			return value{kind: k, i: n}, nil
		case "boolean":
			switch strings.TrimSpace(s) {
			case "0":
				return value{kind: kBool}, nil
			case "1":
				return value{kind: kBool, b: true}, nil
			}
			return value{}, fmt.Errorf("<boolean> value %q is not 0 or 1", s)
		case "string":
			return value{kind: kString, s: s}, nil
		case "double":
			return value{kind: kDouble, s: s}, nil
		}
		return value{kind: kOther, s: s}, nil
	case "array":
		v := value{kind: kArray}
		for {
			tok, err := d.Token()
			if err != nil {
				return v, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if t.Name.Local == "value" {
					e, err := decodeValue(d)
					if err != nil {
						return v, err
					}
					v.arr = append(v.arr, e)
				}
			case xml.EndElement:
				if t.Name.Local == "array" {
					return v, nil
				}
			}
		}
	case "struct":
		if err := d.Skip(); err != nil {
			return value{}, err
		}
		return value{kind: kStruct}, nil
	}
	return value{}, fmt.Errorf("unknown XML-RPC type <%s>", se.Name.Local)
}

// params reads a call's parameters with xmlrpc-c's paramList rules.
type params struct {
	v []value
}

func (p params) n() int { return len(p.v) }

func (p params) str(i int) (string, error) {
	if i >= len(p.v) {
		return "", &fault{faultType, "Not enough parameters"}
	}
	if p.v[i].kind != kString {
		return "", &fault{faultType, "Parameter that is supposed to be a string is not"}
	}
	return p.v[i].s, nil
}

func (p params) int(i int) (int, error) {
	if i >= len(p.v) {
		return 0, &fault{faultType, "Not enough parameters"}
	}
	if p.v[i].kind != kInt {
		return 0, &fault{faultType, "Parameter that is supposed to be integer is not"}
	}
	return int(p.v[i].i), nil
}

func (p params) boolean(i int) (bool, error) {
	if i >= len(p.v) {
		return false, &fault{faultType, "Not enough parameters"}
	}
	if p.v[i].kind != kBool {
		return false, &fault{faultType, "Parameter that is supposed to be boolean is not"}
	}
	return p.v[i].b, nil
}

// Reply serialization (xmlrpc-c style).

const crlf = "\r\n"

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	// xmlrpc-c escapes only & < > (and CR as &#x0d;); EscapeText also
	// escapes quotes and newlines, which are legal as they are.
	r := strings.NewReplacer("&#34;", "\"", "&#39;", "'", "&#xA;", "\n", "&#x9;", "\t", "&#xD;", "&#x0d;")
	return r.Replace(b.String())
}

func encodeResponse(vals ...any) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + crlf)
	b.WriteString("<methodResponse>" + crlf + "<params>" + crlf + "<param><value><array><data>" + crlf)
	for _, v := range vals {
		b.WriteString("<value>")
		switch v := v.(type) {
		case bool:
			if v {
				b.WriteString("<boolean>1</boolean>")
			} else {
				b.WriteString("<boolean>0</boolean>")
			}
		case int:
			b.WriteString("<i4>" + strconv.Itoa(v) + "</i4>")
		case int64:
			b.WriteString("<i8>" + strconv.FormatInt(v, 10) + "</i8>")
		case string:
			b.WriteString("<string>" + xmlEscape(v) + "</string>")
		}
		b.WriteString("</value>" + crlf)
	}
	b.WriteString("</data></array></value></param>" + crlf + "</params>" + crlf + "</methodResponse>" + crlf)
	return []byte(b.String())
}

func encodeFault(f *fault) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + crlf +
		"<methodResponse>" + crlf + "<fault>" + crlf +
		"<value><struct>" + crlf +
		"<member><name>faultCode</name>" + crlf + "<value><i4>" + strconv.Itoa(f.code) + "</i4></value></member>" + crlf +
		"<member><name>faultString</name>" + crlf + "<value><string>" + xmlEscape(f.msg) + "</string></value></member>" + crlf +
		"</struct></value>" + crlf + "</fault>" + crlf + "</methodResponse>" + crlf)
}
