package ec2

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Eucarc holds the variables a eucarc file sets. Eucalyptus hands one to
// every user in the credentials zip (clc/modules/www/.../X509Download.java):
//
//	EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)     (3.3+; 3.2: $(dirname $(readlink -f ${BASH_SOURCE})))
//	export EC2_URL=http://10.0.0.1:8773/services/compute        (3.x: …/services/Eucalyptus)
//	export EC2_ACCESS_KEY='AKI…'
//	export EC2_SECRET_KEY='…'
//	export EC2_CERT=${EUCA_KEY_DIR}/euca2-admin-0a1b2c3d-cert.pem
//	alias ec2-bundle-image="…"
//
// ReadEucarc understands that much shell: assignments with or without
// export, single and double quotes, $VAR, ${VAR}, ${VAR:-default}, and a
// command substitution that computes the file's own directory (any $(…) or
// `…` that calls dirname). Other lines (echo, alias, if …) are skipped. A
// variable whose value needs other command substitutions is recorded as
// unresolvable: Get reports it only when asked for that variable.
type Eucarc struct {
	Path string
	vars map[string]string
	bad  map[string]error
}

var assignRe = regexp.MustCompile(`^(?:export\s+|declare\s+-x\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// ReadEucarc reads and interprets the eucarc file at path.
func ReadEucarc(path string) (*Eucarc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eucarc: %w", err)
	}
	defer f.Close()
	return ParseEucarc(f, path)
}

// ParseEucarc interprets a eucarc read from r; path is where it lives
// (what ${BASH_SOURCE} and $(dirname …) resolve against).
func ParseEucarc(r io.Reader, path string) (*Eucarc, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("eucarc %s: %w", path, err)
	}
	e := &Eucarc{Path: abs, vars: map[string]string{}, bad: map[string]error{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		m := assignRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := e.expandWord(m[2])
		if err != nil {
			e.bad[m[1]] = fmt.Errorf("eucarc %s line %d: %s: %w", path, n, m[1], err)
			delete(e.vars, m[1])
			continue
		}
		e.vars[m[1]] = v
		delete(e.bad, m[1])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eucarc %s: %w", path, err)
	}
	return e, nil
}

// Get returns the value the eucarc gives name, whether it sets it, and an
// error when it sets it in a way ReadEucarc cannot evaluate.
func (e *Eucarc) Get(name string) (string, bool, error) {
	if err, ok := e.bad[name]; ok {
		return "", true, err
	}
	v, ok := e.vars[name]
	return v, ok, nil
}

// linkDir is the directory of the eucarc's path as given (what
// $(dirname $BASH_SOURCE) names: a symlinked eucarc's own directory, not
// its target's).
func (e *Eucarc) linkDir() string { return filepath.Dir(e.Path) }

// physical resolves symlinks in a directory, as pwd -P does after cd.
func physical(dir string) string {
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		return p
	}
	return dir
}

// targetDir is the directory of the file the eucarc path finally names
// (readlink -f / realpath, then dirname).
func (e *Eucarc) targetDir() string {
	if p, err := filepath.EvalSymlinks(e.Path); err == nil {
		return filepath.Dir(p)
	}
	return e.linkDir()
}

func (e *Eucarc) lookup(name string) (string, bool) {
	switch name {
	case "BASH_SOURCE", "0":
		return e.Path, true
	}
	if v, ok := e.vars[name]; ok {
		return v, true
	}
	return os.LookupEnv(name)
}

// expandWord evaluates the first shell word of s (an assignment's value):
// quotes, parameter expansion, the dirname idiom. It stops at the first
// unquoted blank or ';' (what follows is another command or a comment).
func (e *Eucarc) expandWord(s string) (string, error) {
	var out strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == ';':
			return out.String(), nil
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", fmt.Errorf("unterminated single quote")
			}
			out.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			i++
			closed := false
			for i < len(s) {
				if s[i] == '"' {
					closed = true
					i++
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					out.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '$' || s[i] == '`' {
					v, n, err := e.expansion(s[i:])
					if err != nil {
						return "", err
					}
					out.WriteString(v)
					i += n
					continue
				}
				out.WriteByte(s[i])
				i++
			}
			if !closed {
				return "", fmt.Errorf("unterminated double quote")
			}
		case c == '\\' && i+1 < len(s):
			out.WriteByte(s[i+1])
			i += 2
		case c == '$' || c == '`':
			v, n, err := e.expansion(s[i:])
			if err != nil {
				return "", err
			}
			out.WriteString(v)
			i += n
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String(), nil
}

var nameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*|^[0-9]`)

// expansion evaluates the $… or `…` at the start of s and returns its value
// and how many bytes it spans.
func (e *Eucarc) expansion(s string) (string, int, error) {
	if s[0] == '`' {
		j := strings.IndexByte(s[1:], '`')
		if j < 0 {
			return "", 0, fmt.Errorf("unterminated backquote")
		}
		v, err := e.command(s[1 : 1+j])
		return v, j + 2, err
	}
	if len(s) == 1 {
		return "$", 1, nil
	}
	switch s[1] {
	case '(':
		depth := 0
		for j := 1; j < len(s); j++ {
			switch s[j] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					v, err := e.command(s[2:j])
					return v, j + 1, err
				}
			}
		}
		return "", 0, fmt.Errorf("unterminated $(")
	case '{':
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return "", 0, fmt.Errorf("unterminated ${")
		}
		inner := s[2:j]
		name, def, hasDef := inner, "", false
		if k := strings.Index(inner, ":-"); k >= 0 {
			name, def, hasDef = inner[:k], inner[k+2:], true
		} else if k := strings.IndexByte(inner, '-'); k >= 0 {
			name, def, hasDef = inner[:k], inner[k+1:], true
		}
		v, ok := e.lookup(name)
		if (!ok || v == "") && hasDef {
			dv, err := e.expandWord(def)
			if err != nil {
				return "", 0, err
			}
			v = dv
		}
		return v, j + 1, nil
	}
	name := nameRe.FindString(s[1:])
	if name == "" {
		return "$", 1, nil
	}
	v, _ := e.lookup(name)
	return v, 1 + len(name), nil
}

// command evaluates a command substitution. Only the idioms that compute
// the eucarc's own directory are understood, each as bash evaluates it
// for a eucarc that may be a symlink (BASH_SOURCE is the path as sourced,
// the link):
//
//	$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)   the link's directory, symlinks in it resolved (3.3+)
//	$(cd $(dirname ${BASH_SOURCE:-$0}); pwd)      the link's directory as named
//	$(dirname $(readlink -f ${BASH_SOURCE}))      the target file's directory (3.2)
//	$(dirname ${BASH_SOURCE})                     the link's directory as named
func (e *Eucarc) command(cmd string) (string, error) {
	if !strings.Contains(cmd, "dirname") {
		return "", fmt.Errorf("command substitution %q is not supported (only the $(dirname …) idiom)", cmd)
	}
	dir := e.linkDir()
	if strings.Contains(cmd, "readlink -f") || strings.Contains(cmd, "readlink -e") || strings.Contains(cmd, "realpath") {
		dir = e.targetDir()
	}
	if pwdP.MatchString(cmd) {
		dir = physical(dir)
	}
	return dir, nil
}

// pwdP matches a "pwd -P" (physical) in a command.
var pwdP = regexp.MustCompile(`\bpwd\s+-P\b`)
