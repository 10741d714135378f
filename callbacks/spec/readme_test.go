package spec

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite README.md's table of built-ins from All")

// The README's table of built-ins lies between these lines.
const (
	tableBegin = "<!-- builtins table: generated from callbacks/spec (go generate ./callbacks/spec); do not edit -->"
	tableEnd   = "<!-- end of builtins table -->"
)

// markdownTable is the README's table of the built-ins bs.
func markdownTable(bs []*Builtin) string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var sb strings.Builder
	sb.WriteString("| callback | Go path / symbol | hotcb name | what it does | params (default) |\n")
	sb.WriteString("|---|---|---|---|---|\n")
	for _, b := range bs {
		var ps []string
		for _, p := range b.Params() {
			ps = append(ps, "`"+p.Key+": "+Flow(p.Default)+"`")
		}
		fmt.Fprintf(&sb, "| %s | `callbacks/%s` `%s` | `%s` `%s` | %s | %s |\n", b.Name, b.Package, b.Name,
			b.Hotcb, b.HotcbSymbol, cell(b.Doc), cell(strings.Join(ps, ", ")))
	}
	return sb.String()
}

// replaceTable puts table between the markers of readme.
func replaceTable(readme, table string) (string, error) {
	i := strings.Index(readme, tableBegin+"\n")
	j := strings.Index(readme, "\n"+tableEnd)
	if i < 0 || j < i || strings.Count(readme, tableBegin) != 1 || strings.Count(readme, tableEnd) != 1 {
		return "", fmt.Errorf("README.md needs one line %q and, after it, one line %q", tableBegin, tableEnd)
	}
	return readme[:i+len(tableBegin)+1] + table + readme[j+1:], nil
}

// TestREADMETable: README.md's table of built-ins is what All says. With -update (go generate
// ./callbacks/spec) it rewrites it instead.
func TestREADMETable(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := replaceTable(string(data), markdownTable(All))
	require.NoError(t, err)
	if *update {
		if want != string(data) {
			require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
			t.Logf("updated %s", path)
		}
		return
	}
	require.Equal(t, want, string(data), "README.md's table of built-ins is not what callbacks/spec describes: run 'go generate ./callbacks/spec'")
}

func TestReplaceTable(t *testing.T) {
	doc := "intro\n" + tableBegin + "\nold\nrows\n" + tableEnd + "\nafter\n"
	got, err := replaceTable(doc, "| new |\n")
	require.NoError(t, err)
	require.Equal(t, "intro\n"+tableBegin+"\n| new |\n"+tableEnd+"\nafter\n", got)
	again, err := replaceTable(got, "| new |\n")
	require.NoError(t, err)
	require.Equal(t, got, again)
	for _, bad := range []string{"no markers\n", tableEnd + "\n" + tableBegin + "\n", doc + doc, tableBegin + "\nrows\n"} {
		_, err := replaceTable(bad, "x\n")
		require.Error(t, err, bad)
	}
	table := markdownTable([]*Builtin{GradStats.Describe()})
	require.Contains(t, table, "| GradStats | `callbacks/stats` `GradStats` | `grad_stats` `GradStatsCallback` | ")
	require.Contains(t, table, `max \|g\|`, "a | in a cell is escaped")
	require.Contains(t, table, "`every: 50`, `event: backward_end`, `norm_type: 2`")
}
