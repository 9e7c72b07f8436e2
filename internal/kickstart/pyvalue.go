package kickstart

import (
	"errors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Option values follow Python's data model closely enough for the checks
// pykickstart makes: nil (None), bool, int64, float64, string, []any.

// truthy is Python's bool(v).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// pyEqual is Python's ==, for the value kinds above.
func pyEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y
		case int64:
			return boolInt(x) == y
		case float64:
			return float64(boolInt(x)) == y
		}
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		case bool:
			return x == boolInt(y)
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case int64:
			return x == float64(y)
		case bool:
			return x == float64(boolInt(y))
		}
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// pyRepr renders a value the way Python's repr() does, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		q := "'"
		if strings.Contains(x, "'") && !strings.Contains(x, `"`) {
			q = `"`
		}
		var b strings.Builder
		b.WriteString(q)
		for _, r := range x {
			switch {
			case r == '\\':
				b.WriteString(`\\`)
			case string(r) == q:
				b.WriteString(`\` + q)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\t':
				b.WriteString(`\t`)
			case r == '\r':
				b.WriteString(`\r`)
			case r < 0x20 || r == 0x7f:
				b.WriteString(`\x` + strconv.FormatInt(int64(r)+0x100, 16)[1:])
			default:
				b.WriteRune(r)
			}
		}
		b.WriteString(q)
		return b.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return "?"
}

var errPyValue = errors.New("invalid literal")

// pyInt is Python's int(s) for a str: surrounding whitespace, a sign,
// decimal digits (any Unicode decimal digit) with single underscores
// between them. Values beyond int64 saturate; only comparisons use them.
func pyInt(s string) (int64, error) {
	s = pyStrip(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, errPyValue
	}
	var digits strings.Builder
	prevUnderscore, first := false, true
	for _, r := range s {
		if r == '_' {
			if first || prevUnderscore {
				return 0, errPyValue
			}
			prevUnderscore = true
			continue
		}
		d, ok := decimalValue(r)
		if !ok {
			return 0, errPyValue
		}
		digits.WriteByte(byte('0' + d))
		prevUnderscore, first = false, false
	}
	if prevUnderscore {
		return 0, errPyValue
	}
	n, ok := new(big.Int).SetString(digits.String(), 10)
	if !ok {
		return 0, errPyValue
	}
	if neg {
		n.Neg(n)
	}
	switch {
	case n.IsInt64():
		return n.Int64(), nil
	case n.Sign() > 0:
		return math.MaxInt64, nil
	default:
		return math.MinInt64, nil
	}
}

// decimalValue returns the value of a Unicode decimal digit (category Nd).
// Nd digits come in aligned runs of ten, zero first.
func decimalValue(r rune) (int, bool) {
	if r >= '0' && r <= '9' {
		return int(r - '0'), true
	}
	if !unicode.IsDigit(r) {
		return 0, false
	}
	n := 0
	for k := r - 1; unicode.IsDigit(k); k-- {
		n++
	}
	return n % 10, true
}

var rePyFloat = regexp.MustCompile(`^[+-]?(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*(?:[eE][+-]?\d(?:_?\d)*)?|\d(?:_?\d)*\.?(?:[eE][+-]?\d(?:_?\d)*)?)$`)

// pyFloat is Python's float(s) for a str.
func pyFloat(s string) (float64, error) {
	s = pyStrip(s)
	var ascii strings.Builder
	for _, r := range s {
		if d, ok := decimalValue(r); ok {
			ascii.WriteByte(byte('0' + d))
		} else {
			ascii.WriteRune(r)
		}
	}
	t := ascii.String()
	switch strings.ToLower(strings.TrimLeft(t, "+-")) {
	case "inf", "infinity":
		if strings.HasPrefix(t, "-") {
			return math.Inf(-1), nil
		}
		if strings.Count(t, "+")+strings.Count(t, "-") <= 1 {
			return math.Inf(1), nil
		}
		return 0, errPyValue
	case "nan":
		if strings.Count(t, "+")+strings.Count(t, "-") <= 1 {
			return math.NaN(), nil
		}
		return 0, errPyValue
	}
	if !rePyFloat.MatchString(t) {
		return 0, errPyValue
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errPyValue
	}
	return f, nil
}

// ksBoolean is pykickstart's ksboolean type.
func ksBoolean(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on", "yes", "true", "1":
		return true, true
	case "off", "no", "false", "0":
		return false, true
	}
	return false, false
}

// commaSplit is pykickstart's commaSplit type.
func commaSplit(s string) []any {
	out := []any{}
	for _, v := range strings.Split(s, ",") {
		if v = pyStrip(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
