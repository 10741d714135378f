package rundir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReadStatus: whatever bytes sit in hotcb.status.json (a torn write by another tool, a
// hand edit, garbage), ReadStatus never panics; a failure names the file, and an accepted
// status survives a write/read round trip unchanged (what `hotcb status` shows is what was
// read). Seeds: testdata/fuzz/FuzzReadStatus (a kernel's status, a bare controller's, torn and
// mistyped ones).
func FuzzReadStatus(f *testing.F) {
	f.Add([]byte(`{"written_at":"2026-11-29T12:00:00Z","pid":1,"step":3,"epoch":0,"callbacks":[],"commands_offset":0,"bad_lines":0}`))
	f.Add([]byte(`{"callbacks":[{"id":"t","enabled":true,"loaded":true,"params":{"every":5},"calls":9,"errors":0,"mean_us":1.5,"max_us":3}]}`))
	f.Add([]byte(`{"step":"x"}`))
	f.Add([]byte{})
	p := filepath.Join(f.TempDir(), "hotcb.status.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Skip(err)
		}
		st, err := ReadStatus(p)
		if err != nil {
			require.Nil(t, st)
			require.True(t, strings.Contains(err.Error(), p), "the error names the file: %v", err)
			return
		}
		require.NotNil(t, st)
		once, err := json.Marshal(st)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, once, 0o600))
		again, err := ReadStatus(p)
		require.NoError(t, err, "%s", once)
		twice, err := json.Marshal(again)
		require.NoError(t, err)
		require.Equal(t, string(once), string(twice))
	})
}
