package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { register(newVersionCommand) }

// versionInfo is what `hotcb version` reports.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// TorchBinary is the hotcb-torch that train runs, from a binary without libtorch; "" when
	// none is found.
	TorchBinary string `json:"hotcb_torch,omitempty"`
	// LibtorchInfo is there in a binary with libtorch (UseTorch).
	*LibtorchInfo
}

func currentVersion() versionInfo {
	v := versionInfo{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				if s.Value == "true" && v.Revision != "" {
					v.Revision += "+dirty"
				}
			}
		}
	}
	return v
}

func newVersionCommand(a *app) *cobra.Command {
	var asJSON, withLibtorch bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the hotcb-go, Go and libtorch versions and whether CUDA can be used",
		Long: `version reports this binary's version and the Go toolchain it was built with. hotcb does not
link libtorch: it names the ` + TorchBinary + ` that train runs, and with --libtorch hands over to
it. ` + TorchBinary + ` also reports the libtorch version of the loaded shim
(build/libhotcb_torch.so, or the one first on LD_LIBRARY_PATH), whether that shim was built
with CUDA, and whether a CUDA device is available.`,
		Example: `  hotcb version
  hotcb version --json
  hotcb version --libtorch`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			hasTorch := a.torch != nil && a.torch.Libtorch != nil
			if withLibtorch && !hasTorch {
				return a.handOff("version --libtorch")
			}
			v := currentVersion()
			var findErr error
			if hasTorch {
				lt := a.torch.Libtorch()
				v.LibtorchInfo = &lt
			} else {
				v.TorchBinary, findErr = FindTorch()
			}
			if asJSON {
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			rev := ""
			if v.Revision != "" {
				rev = " (" + v.Revision + ")"
			}
			fmt.Fprintf(a.out, "hotcb-go %s%s\ngo:       %s %s\n", v.Version, rev, v.Go, v.Platform)
			if lt := v.LibtorchInfo; lt != nil {
				cuda := "no"
				if lt.CUDAAvailable {
					cuda = fmt.Sprintf("yes, %d device(s)", lt.CUDADevices)
				}
				fmt.Fprintf(a.out, "libtorch: %s\nshim built with CUDA: %s\nCUDA available: %s\n", lt.Libtorch, yesNo(lt.BuiltWithCUDA), cuda)
				return nil
			}
			fmt.Fprintf(a.out, "libtorch: not linked into hotcb (train runs %s; 'hotcb version --libtorch' asks it)\n", TorchBinary)
			if findErr != nil {
				fmt.Fprintf(a.out, "%s: not found: %v\n", TorchBinary, findErr)
			} else {
				fmt.Fprintf(a.out, "%s: %s\n", TorchBinary, v.TorchBinary)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	c.Flags().BoolVar(&withLibtorch, "libtorch", false, "report libtorch and CUDA too (hotcb runs "+TorchBinary+" for that)")
	return c
}
