package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

func TestRefMallocEnv(t *testing.T) {
	tuned := bridge.MallocTuning{Applied: true, TrimThreshold: 512 << 20, MmapThreshold: 32 << 20}
	env, note, err := refMallocEnv("same", tuned)
	require.NoError(t, err)
	require.Equal(t, []string{"GLIBC_TUNABLES=glibc.malloc.trim_threshold=536870912:glibc.malloc.mmap_threshold=33554432"}, env)
	require.Contains(t, note, "same thresholds")

	env, note, err = refMallocEnv("same", bridge.MallocTuning{Note: "HOTCB_MALLOC=default"})
	require.NoError(t, err)
	require.Empty(t, env, "nothing to copy when Go runs glibc's defaults")
	require.Contains(t, note, "as the Go process")

	env, _, err = refMallocEnv("default", tuned)
	require.NoError(t, err)
	require.Empty(t, env)

	_, _, err = refMallocEnv("tuned", tuned)
	require.ErrorContains(t, err, `-ref-malloc "tuned": want same or default`)
	require.Contains(t, describeMalloc(tuned), "M_TRIM_THRESHOLD 512 MiB, M_MMAP_THRESHOLD 32 MiB")
}
