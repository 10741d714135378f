package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Schema is one op schema: aten::name.overload(args) -> returns.
type Schema struct {
	Text     string // as registered, without "aten::"
	Name     string // "add_", "max_pool2d"
	Overload string // "Tensor", "out", ""
	Args     []Arg
	Returns  []Ret
}

// Arg is one argument: its type (as written, alias annotation removed), whether it is
// keyword-only, its default and its alias annotation ("a!", "a", "").
type Arg struct {
	Name    string
	Type    string
	Alias   string
	Default string
	KwOnly  bool
}

// Ret is one result.
type Ret struct {
	Type  string
	Alias string
	Name  string
}

// Mutable says whether the argument is written by the op (alias annotation with !).
func (a Arg) Mutable() bool { return strings.HasSuffix(a.Alias, "!") }

var schemaComment = regexp.MustCompile(`// (\{"schema".*\})\s*$`)

// readDeclarations reads the schemas of RegistrationDeclarations.h.
func readDeclarations(path string) ([]Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Schema
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		m := schemaComment.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var meta struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal([]byte(m[1]), &meta); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		s, err := parseSchema(meta.Schema)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseSchema parses "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor".
func parseSchema(text string) (Schema, error) {
	text = strings.TrimPrefix(text, "aten::")
	s := Schema{Text: text}
	open := strings.IndexByte(text, '(')
	if open < 0 {
		return s, fmt.Errorf("schema %q: no argument list", text)
	}
	s.Name, s.Overload, _ = strings.Cut(text[:open], ".")
	closeAt := matching(text, open)
	if closeAt < 0 {
		return s, fmt.Errorf("schema %q: unbalanced parentheses", text)
	}
	kw := false
	for _, part := range splitTop(text[open+1 : closeAt]) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if part == "*" {
			kw = true
			continue
		}
		a, err := parseArg(part)
		if err != nil {
			return s, fmt.Errorf("schema %q: %v", text, err)
		}
		a.KwOnly = kw
		s.Args = append(s.Args, a)
	}
	rest := strings.TrimSpace(text[closeAt+1:])
	if !strings.HasPrefix(rest, "->") {
		return s, fmt.Errorf("schema %q: no returns", text)
	}
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "->"))
	if strings.HasPrefix(rest, "(") && matching(rest, 0) == len(rest)-1 {
		rest = rest[1 : len(rest)-1]
	}
	for _, part := range splitTop(rest) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		typ, name := part, ""
		if i := strings.LastIndexByte(part, ' '); i > 0 && !strings.ContainsAny(part[i:], "()[]") {
			typ, name = strings.TrimSpace(part[:i]), part[i+1:]
		}
		t, alias := stripAlias(typ)
		s.Returns = append(s.Returns, Ret{Type: t, Alias: alias, Name: name})
	}
	return s, nil
}

func parseArg(part string) (Arg, error) {
	var a Arg
	decl := part
	if i := strings.IndexByte(part, '='); i >= 0 {
		decl, a.Default = strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
	}
	i := strings.LastIndexByte(decl, ' ')
	if i < 0 {
		return a, fmt.Errorf("argument %q has no name", part)
	}
	a.Type, a.Alias = stripAlias(strings.TrimSpace(decl[:i]))
	a.Name = decl[i+1:]
	return a, nil
}

// stripAlias turns "Tensor(a!)[]" into "Tensor[]" and "a!".
func stripAlias(t string) (string, string) {
	i := strings.IndexByte(t, '(')
	if i < 0 {
		return t, ""
	}
	j := strings.IndexByte(t[i:], ')')
	if j < 0 {
		return t, ""
	}
	alias := t[i+1 : i+j]
	alias, _, _ = strings.Cut(alias, " ") // "a -> *"
	return t[:i] + t[i+j+1:], alias
}

// matching returns the index of the parenthesis closing the one at open.
func matching(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTop splits on commas outside brackets, parentheses and quotes.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
