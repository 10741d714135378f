package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// nobody is the second user of these tests: as root, files and processes can be given its uid.
const nobody = 65534

func needRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as a second user (uid 65534); run the tests as root to check this")
	}
}

// asNobody runs a command as the second user.
func asNobody(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v as uid %d: %s", name, args, nobody, out)
}

// A run directory that another user can write to, or owns, is refused with a clear error; the
// explicit override accepts it.
func TestSharedRunDirectoryIsRefused(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	require.NoError(t, os.Mkdir(open, 0o700))
	require.NoError(t, os.Chmod(open, 0o777))
	_, err := kernel.New(open, kernel.Options{})
	require.ErrorContains(t, err, "run directory "+open+" is not private: directory "+open+" is writable by group or others (mode -rwxrwxrwx) and not sticky")
	require.ErrorContains(t, err, "hotcb train --allow-shared-rundir")

	// A sticky directory protects what is in it, not what is added: still refused.
	require.NoError(t, os.Chmod(open, 0o777|os.ModeSticky))
	_, err = kernel.New(open, kernel.Options{})
	require.ErrorContains(t, err, "sticky or not")

	group := filepath.Join(root, "group", "run")
	require.NoError(t, os.MkdirAll(group, 0o700))
	require.NoError(t, os.Chmod(filepath.Dir(group), 0o770))
	_, err = kernel.New(group, kernel.Options{})
	require.ErrorContains(t, err, "directory "+filepath.Dir(group)+" is writable by group or others (mode -rwxrwx---) and not sticky",
		"an ancestor anyone in the group could rename")

	k, err := kernel.New(open, kernel.Options{AllowSharedRunDir: true})
	require.NoError(t, err, "the explicit override")
	require.NoError(t, k.Close())

	t.Run("owned by another user", func(t *testing.T) {
		needRoot(t)
		theirs := filepath.Join(root, "theirs")
		require.NoError(t, os.Mkdir(theirs, 0o700))
		require.NoError(t, os.Chown(theirs, nobody, nobody))
		_, err := kernel.New(theirs, kernel.Options{})
		require.ErrorContains(t, err, fmt.Sprintf("directory %s is owned by uid %d, not by this user or root", theirs, nobody))
	})
}

// Even in a shared run directory (the override), files another user plants as symbolic links
// are never followed: the ledger is not appended into the file the link names, a planted
// commands file is not applied, a planted YAML is not read.
func TestPlantedSymlinksAreNotFollowed(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o711)) // the second user may pass through
	run := filepath.Join(root, "run")
	require.NoError(t, os.Mkdir(run, 0o700))
	require.NoError(t, os.Chmod(run, 0o777))
	secret := filepath.Join(root, "root-only")
	require.NoError(t, os.WriteFile(secret, []byte("root's\n"), 0o600))
	evil := filepath.Join(root, "evil.jsonl")
	require.NoError(t, os.WriteFile(evil, []byte(`{"op":"load","id":"e","target":{"kind":"module","path":"test/e","symbol":"E"}}`+"\n"), 0o644))
	evilYAML := filepath.Join(root, "evil.yaml")
	require.NoError(t, os.WriteFile(evilYAML, []byte("version: 1\ncallbacks:\n  y: {target: {kind: module, path: test/e, symbol: E}}\n"), 0o644))
	for _, l := range [][2]string{{secret, rundir.Applied}, {evil, rundir.Commands}, {evilYAML, rundir.Config}} {
		asNobody(t, "ln", "-s", l[0], filepath.Join(run, l[1]))
	}

	loaded := 0
	reg := callback.NewRegistry()
	reg.Register("test/e", "E", func(id string, _ map[string]any) (callback.HotCallback, error) {
		loaded++
		return &seqCB{id: id}, nil
	})
	var log []string
	k, err := kernel.New(run, kernel.Options{AllowSharedRunDir: true,
		Controller: controller.Options{Registry: reg, PollEveryStep: true, Log: func(s string) { log = append(log, s) }}})
	require.NoError(t, err)
	env := &torchenv.Env{}
	require.NoError(t, k.Submit(ops.Op{Op: ops.OpLoad, ID: "api", Target: &ops.CallbackTarget{Kind: "module", Path: "test/e", Symbol: "E"}}))
	for i := 0; i < 3; i++ {
		k.Apply(env, torchenv.TrainStepEnd)
		env.Step++
	}
	require.NoError(t, k.Close())
	require.Equal(t, 1, loaded, "only the API's load: neither the planted commands nor the planted YAML")
	b, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "root's\n", string(b), "the ledger entry did not go into the file the link names")
	text := strings.Join(log, "\n")
	require.Contains(t, text, "ledger: cannot append")
	require.Contains(t, text, rundir.Commands+" is a symbolic link; refusing to follow it")
	require.Contains(t, text, rundir.Config+" is a symbolic link")
}
