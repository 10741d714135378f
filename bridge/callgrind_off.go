//go:build !callgrind

package bridge

// Without -tags callgrind the callgrind client requests are not compiled in: see callgrind.go.

// CallgrindAvailable reports whether the callgrind client requests are compiled in (-tags
// callgrind): false in this build.
func CallgrindAvailable() bool { return false }

// OnValgrind reports whether the process runs under valgrind; this build cannot tell (false).
func OnValgrind() bool { return false }

// CallgrindBegin does nothing in a build without -tags callgrind.
func CallgrindBegin() {}

// CallgrindEnd does nothing in a build without -tags callgrind.
func CallgrindEnd(string) {}
