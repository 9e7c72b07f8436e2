package kickstart

import "errors"

// Errors returned by SplitLine; the texts are Python's, because a kickstart
// author searching for the message will find pykickstart's.
var (
	ErrNoClosingQuotation = errors.New("No closing quotation")
	ErrNoEscapedCharacter = errors.New("No escaped character")
)

// SplitLine splits one kickstart line into words exactly as pykickstart does
// with Python's shlex.split(line, comments=comments) in POSIX mode:
//
//   - space, tab, CR and LF separate words (no other whitespace does);
//   - single quotes keep everything literally; double quotes keep everything
//     but a backslash before '"' or '\';
//   - outside quotes a backslash escapes the next character;
//   - with comments, '#' starts a comment wherever a new character of a word
//     would be read, even inside an unquoted word: "http://h/a#b" is cut to
//     "http://h/a". The rest of the line is dropped.
//   - an empty quoted string is a word ("" gives one empty word).
//
// A quote left open at the end of the line is ErrNoClosingQuotation; a
// backslash at the very end is ErrNoEscapedCharacter.
func SplitLine(line string, comments bool) ([]string, error) {
	words, _, err := splitLine(line, comments)
	return words, err
}

// commentCut describes where a comment started on a line split with
// comments: At is the byte offset of the '#', -1 if there was none;
// InWord is set when the '#' was glued to a word ("a#b", "'x'#y"), the
// trap where an unquoted value is silently cut.
type commentCut struct {
	At     int
	InWord bool
}

func splitLine(line string, comments bool) ([]string, commentCut, error) {
	cut := commentCut{At: -1}
	const (
		stWhite  = ' '
		stWord   = 'a'
		stEscape = '\\'
		stEOF    = 0
	)
	isWS := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
	isQuote := func(r rune) bool { return r == '\'' || r == '"' }

	runes := []rune(line)
	pos := 0
	markCut := func(inWord bool) {
		if cut.At < 0 {
			cut = commentCut{At: len(string(runes[:pos-1])), InWord: inWord}
		}
	}
	// readline consumes up to and including the next '\n', like
	// io.StringIO.readline after a comment character.
	readline := func() {
		for pos < len(runes) {
			r := runes[pos]
			pos++
			if r == '\n' {
				return
			}
		}
	}

	var words []string
	state := rune(stWhite)
	for state != stEOF {
		var token []rune
		quoted := false
		escapedState := rune(stWhite)
	token:
		for {
			var next rune
			eof := pos >= len(runes)
			if !eof {
				next = runes[pos]
				pos++
			}
			switch {
			case state == stWhite:
				switch {
				case eof:
					state = stEOF
					break token
				case isWS(next):
					if len(token) > 0 || quoted {
						break token
					}
				case comments && next == '#':
					markCut(false)
					readline()
				case next == '\\':
					escapedState = stWord
					state = stEscape
				case isQuote(next):
					state = next
				default:
					token = []rune{next}
					state = stWord
				}
			case isQuote(state):
				quoted = true
				switch {
				case eof:
					return nil, cut, ErrNoClosingQuotation
				case next == state:
					state = stWord
				case next == '\\' && state == '"':
					escapedState = state
					state = stEscape
				default:
					token = append(token, next)
				}
			case state == stEscape:
				if eof {
					return nil, cut, ErrNoEscapedCharacter
				}
				// Inside double quotes only the quote and the backslash
				// itself can be escaped; otherwise the backslash stays.
				if isQuote(escapedState) && next != state && next != escapedState {
					token = append(token, state)
				}
				token = append(token, next)
				state = escapedState
			default: // stWord
				switch {
				case eof:
					state = stEOF
					break token
				case isWS(next):
					state = stWhite
					if len(token) > 0 || quoted {
						break token
					}
				case comments && next == '#':
					markCut(true)
					readline()
					state = stWhite
					if len(token) > 0 || quoted {
						break token
					}
				case isQuote(next):
					state = next
				case next == '\\':
					escapedState = stWord
					state = stEscape
				default:
					token = append(token, next)
				}
			}
		}
		if len(token) == 0 && !quoted {
			// An empty unquoted token is end of input for shlex.
			break
		}
		words = append(words, string(token))
	}
	return words, cut, nil
}
