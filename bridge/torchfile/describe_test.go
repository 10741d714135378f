package torchfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDescribe(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "state_dict.pt"))
	require.NoError(t, err)
	k, what := Describe(bytes.NewReader(b), int64(len(b)))
	require.Equal(t, TorchSave, k)
	require.Equal(t, "a torch.save file holding a dict of 2 tensors and numbers (a state dict or checkpoint)", what)
	k, what = Describe(bytes.NewReader([]byte("hello")), 5)
	require.Equal(t, NotTorch, k)
	require.Equal(t, "not a PyTorch file", what)
}
