package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
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

// TestTrainNprocLaunchesRanks: --nproc starts hotcb-torch once per rank with torchrun's
// environment and the arguments less the launch flags; a failing rank is the error.
func TestTrainNprocLaunchesRanks(t *testing.T) {
	dir := newRunDir(t)
	fake := filepath.Join(t.TempDir(), "hotcb-torch")
	writeFile(t, fake, "#!/bin/sh\necho \"args $* rank $RANK of $WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE at $MASTER_ADDR\"\n"+
		"if [ \"$RANK\" = 1 ] && [ -n \"$FAKE_FAIL\" ]; then echo 'boom: rank 1 cannot train' >&2; exit 4; fi\n")
	require.NoError(t, os.Chmod(fake, 0o700))
	t.Setenv(TorchEnv, fake)
	out := runCLI(t, "--dir", dir, "train", "--nproc", "2", "--steps", "3", "--master-port", "29999")
	require.NoError(t, out.err, out.errOut)
	for r := 0; r < 2; r++ {
		require.Contains(t, out.out, fmt.Sprintf("[rank %d] args --dir %s train --steps 3 rank %d of 2 local %d/2 at 127.0.0.1\n", r, dir, r, r))
	}
	t.Setenv("FAKE_FAIL", "1")
	out = runCLI(t, "--dir", dir, "train", "--nproc=3")
	require.ErrorContains(t, out.err, "rank 1 failed: exit status 4: boom: rank 1 cannot train")
	out = runCLI(t, "--dir", dir, "train", "--nproc", "0")
	require.ErrorContains(t, out.err, "--nproc 0")
	out = runCLI(t, "--dir", dir, "train", "--nproc", "2", "--nnodes", "2")
	require.ErrorContains(t, out.err, "--nnodes > 1 without --master-port")
}
