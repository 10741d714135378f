package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/serve"
)

// hotcb serve prints the address with the token, serves until the context ends, then exits 0;
// the token it printed opens writes.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() { code <- Run(ctx, []string{"--dir", dir, "serve", "--addr", "127.0.0.1:0"}, &out, &errOut) }()
	re := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+/)#token=([0-9a-f]{32})`)
	var m []string
	require.Eventually(t, func() bool { m = re.FindStringSubmatch(out.String()); return m != nil }, 10*time.Second, 20*time.Millisecond, "the address: %s %s", out.String(), errOut.String())
	base, tok := m[1], m[2]

	res, err := http.Get(base)
	require.NoError(t, err)
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, string(page), "/static/app.js")

	post := func(tok string) int {
		req, _ := http.NewRequest("POST", base+"api/cli", strings.NewReader(`{"args":["cb","disable","timing"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(serve.TokenHeader, tok)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, 403, post(strings.Repeat("0", 32)))
	require.Equal(t, 200, post(tok))
	b, err := os.ReadFile(filepath.Join(dir, rundir.Commands))
	require.NoError(t, err)
	require.Equal(t, `{"module":"cb","op":"disable","id":"timing"}`+"\n", string(b))

	// Another name for this machine is refused (DNS rebinding).
	req, _ := http.NewRequest("GET", base+"api/info", nil)
	req.Host = "attacker.example"
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusMisdirectedRequest, res.StatusCode)

	cancel()
	select {
	case c := <-code:
		require.Zero(t, c, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeReadOnly(t *testing.T) {
	dir := t.TempDir()
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, []string{"--dir", dir, "serve", "--addr", "127.0.0.1:0", "--read-only"}, &out, &errOut)
	re := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+/) \(read-only`)
	var m []string
	require.Eventually(t, func() bool { m = re.FindStringSubmatch(out.String()); return m != nil }, 10*time.Second, 20*time.Millisecond, out.String())
	require.NotContains(t, out.String(), "token=")
	res, err := http.Get(m[1] + "api/info")
	require.NoError(t, err)
	var info map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&info))
	res.Body.Close()
	require.Equal(t, true, info["read_only"])
}

func TestServeBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir, "serve", "--runs", dir}, "mutually exclusive"},
		{[]string{"serve", "--runs", filepath.Join(dir, "nope")}, "is not a directory"},
		{[]string{"--dir", filepath.Join(dir, "nope"), "serve"}, "does not exist"},
		{[]string{"--dir", dir, "serve", "--addr", "127.0.0.1:99999"}, "cannot listen"},
		{[]string{"--dir", dir, "serve", "extra"}, "takes no arguments"},
	} {
		var out, errOut syncBuffer
		code := Run(context.Background(), c.args, &out, &errOut)
		require.Equal(t, 2, code, "%v: %s", c.args, errOut.String())
		require.Contains(t, errOut.String(), c.want, c.args)
	}
}
