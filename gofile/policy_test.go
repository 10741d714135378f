package gofile

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAllowListIsExplicit: every package and symbol the lists name exists in the interpreter's
// tables (no typo silently allows or refuses nothing), every symbol of a partly allowed package is
// decided one way or the other with a reason (a new yaegi version adding symbols fails here,
// until someone decides), and the default table holds exactly what the lists allow.
func TestAllowListIsExplicit(t *testing.T) {
	table := func(pkg string) map[string]bool {
		syms, ok := fullStdlib[pkg+"/"+stdPackageNames[pkg]]
		require.True(t, ok, "package %s is not in yaegi's standard library", pkg)
		m := map[string]bool{}
		for s := range syms {
			m[s] = true
		}
		return m
	}
	for _, pkg := range allowedPackages {
		table(pkg)
		_, partial := partialPackages[pkg]
		require.False(t, partial, "%s is listed as allowed and as partly allowed", pkg)
	}
	for pkg := range refusedPackages {
		if pkg != "plugin" { // not in yaegi's tables at all
			table(pkg)
		}
		ok, _ := packagePolicy(pkg)
		require.False(t, ok, pkg)
	}
	for pkg, p := range partialPackages {
		syms := table(pkg)
		for _, s := range p.allow {
			require.True(t, syms[s], "%s.%s is allowed but does not exist", pkg, s)
			require.Empty(t, p.refuse[s], "%s.%s is both allowed and refused", pkg, s)
		}
		for s, why := range p.refuse {
			require.True(t, syms[s], "%s.%s is refused but does not exist", pkg, s)
			require.NotEmpty(t, why)
		}
		var undecided []string
		for s := range syms {
			base := strings.TrimPrefix(s, "_") // the interpreter's interface wrappers follow the interface
			if !symbolAllowed(pkg, base) && p.refuse[base] == "" {
				undecided = append(undecided, s)
			}
		}
		sort.Strings(undecided)
		require.Empty(t, undecided, "symbols of %s neither allowed nor refused", pkg)

		got := restricted[pkg+"/"+stdPackageNames[pkg]]
		for s := range syms {
			_, in := got[s]
			require.Equal(t, symbolAllowed(pkg, s), in, "%s.%s in the default table", pkg, s)
		}
	}
	for k := range restricted {
		if k == "." {
			continue
		}
		ok, _ := packagePolicy(pkgOf(k))
		require.True(t, ok, "%s is in the default table but not allowed", k)
	}
	// the packages the issue names stay out
	for _, pkg := range []string{"os/exec", "syscall", "unsafe", "plugin", "net", "net/http", "os/signal", "github.com/traefik/yaegi/stdlib"} {
		ok, why := packagePolicy(pkg)
		require.False(t, ok, pkg)
		require.NotEqual(t, whyNotListed, why, "%s is refused with its reason", pkg)
		require.False(t, available(pkg, false), "%s is not in the default table", pkg)
	}
}
