package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTrainModelFile: --model takes a TorchScript file, checked here, without libtorch: a file
// that is missing or holds something else is a usage error (exit status 2) that says what it
// holds; a TorchScript file is handed over.
func TestTrainModelFile(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	sd, err := os.ReadFile(filepath.Join("..", "bridge", "torchfile", "testdata", "state_dict.pt"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, "statedict.pt"), string(sd))
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a model\n")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "models.pt"), 0o700))
	script := filepath.Join(dir, "scripted.pt")
	writeFile(t, script, fakeTorchScript(t))

	const save = "(hint: in Python, save the model with torch.jit.save(torch.jit.script(model), path) (or torch.jit.trace(model, example_input)))"
	for _, c := range []struct{ model, want string }{
		{"nonexistent.pt", "hotcb: --model nonexistent.pt: no such file (hint: use --model cnn, --model mlp, or the path of a TorchScript file)"},
		{filepath.Join(dir, "statedict.pt"), "hotcb: --model " + filepath.Join(dir, "statedict.pt") + " is a torch.save file holding a dict of 2 tensors and numbers (a state dict or checkpoint), not a TorchScript module: hotcb train needs the model's code as well as its weights " + save},
		{filepath.Join(dir, "notes.txt"), "hotcb: --model " + filepath.Join(dir, "notes.txt") + " is not a PyTorch file, not a TorchScript module " + save},
		{filepath.Join(dir, "models.pt"), "is a directory, not a TorchScript file"},
		{"resnet", `hotcb: unknown model "resnet" (hint: use --model cnn, --model mlp, or the path of a TorchScript file)`},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), []string{"--dir", run, "train", "--model", c.model}, &out, &errOut)
		require.Equal(t, 2, code, c.model)
		require.Contains(t, errOut.String(), c.want)
		require.Empty(t, out.String())
	}
	require.NoDirExists(t, run, "nothing is created for a bad --model")

	// A TorchScript file is hotcb-torch's to load: handed over with the arguments as given, or
	// passed to Torch.Train.
	var calls []handoffCall
	args := []string{"--dir", run, "train", "--model", script, "--steps", "3"}
	r := runWith(t, recorder(&calls), args...)
	require.EqualError(t, r.err, "handed off")
	require.Equal(t, []handoffCall{{"train", args}}, calls)
	var got []TrainOptions
	a := recorder(&calls)
	a.torch = &Torch{Train: func(_ context.Context, o TrainOptions) error { got = append(got, o); return nil }}
	r = runWith(t, a, args...)
	require.NoError(t, r.err)
	require.Len(t, got, 1)
	require.Equal(t, script, got[0].Model)

	r = runWith(t, recorder(&calls), "train", "--help")
	require.NoError(t, r.err)
	require.Contains(t, r.out, "a TorchScript file")
	require.Contains(t, r.out, "torch.jit.save")
	require.Contains(t, r.out, "--model my_cnn.pt")
}

// fakeTorchScript is a zip laid out as torch.jit.save writes one (what torchfile.Sniff looks at).
func fakeTorchScript(t *testing.T) string {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, name := range []string{"m/data.pkl", "m/constants.pkl", "m/code/__torch__.py", "m/version"} {
		w, err := z.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.NoError(t, z.Close())
	return b.String()
}
