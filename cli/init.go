package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/rundir"
)

func init() { register(newInitCommand) }

func newInitCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a run directory with a commented hotcb.yaml and an empty commands file",
		Long: `init creates the run directory (0700) if needed, a hotcb.yaml (0600) that lists the built-in
callbacks — loaded but disabled, so 'hotcb enable ID' turns one on — with examples commented
out, and an empty hotcb.commands.jsonl (0600). Files that exist are left as they are.`,
		Example: `  hotcb --dir runs/exp1 init
  hotcb --dir runs/exp1 enable timing`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := rundir.Dir(a.dir)
			if fi, err := os.Stat(a.dir); err == nil && !fi.IsDir() {
				return usageErr(fmt.Sprintf("%s exists and is not a directory", a.dir), "pass a directory with --dir")
			}
			if err := dir.Ensure(); err != nil {
				return err
			}
			files := []struct {
				name, content string
			}{
				{rundir.Config, configTemplate(a.registered())},
				{rundir.Commands, ""},
			}
			for _, f := range files {
				p := dir.Path(f.name)
				created, err := createNew(p, f.content)
				switch {
				case err != nil:
					return err
				case created:
					fmt.Fprintf(a.out, "created %s\n", p)
				default:
					fmt.Fprintf(a.out, "exists: %s (left unchanged)\n", p)
				}
			}
			return nil
		},
	}
}

// registered lists the callbacks registered in this binary: none in hotcb, which links no
// callback (and does not need to: the training process resolves the names).
func (a *app) registered() []string {
	if a.torch == nil || a.torch.Registered == nil {
		return nil
	}
	return a.torch.Registered()
}

// createNew writes a file that must not exist yet (O_EXCL: never overwrites, even racing
// another init); it reports false when the file was already there.
func createNew(path, content string) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, werr := f.WriteString(content)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return false, werr
	}
	return true, nil
}
