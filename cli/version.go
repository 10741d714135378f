package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/bridge"
)

func init() { register(newVersionCommand) }

// versionInfo is what `hotcb version` reports.
type versionInfo struct {
	Version       string `json:"version"`
	Revision      string `json:"revision,omitempty"`
	Go            string `json:"go"`
	Platform      string `json:"platform"`
	Libtorch      string `json:"libtorch"`
	BuiltWithCUDA bool   `json:"shim_built_with_cuda"`
	CUDAAvailable bool   `json:"cuda_available"`
	CUDADevices   int    `json:"cuda_devices"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Libtorch: bridge.Version(), BuiltWithCUDA: bridge.BuiltWithCUDA(), CUDAAvailable: bridge.CUDAIsAvailable()}
	if v.CUDAAvailable {
		v.CUDADevices = bridge.CUDADeviceCount()
	}
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
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the hotcb-go, Go and libtorch versions and whether CUDA can be used",
		Long: `version reports this binary's version, the Go toolchain it was built with, the libtorch version
of the loaded shim (build/libhotcb_torch.so, or the one first on LD_LIBRARY_PATH), whether that
shim was built with CUDA, and whether a CUDA device is available.`,
		Example: `  hotcb version
  hotcb version --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := currentVersion()
			if asJSON {
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			rev := ""
			if v.Revision != "" {
				rev = " (" + v.Revision + ")"
			}
			cuda := "no"
			if v.CUDAAvailable {
				cuda = fmt.Sprintf("yes, %d device(s)", v.CUDADevices)
			}
			fmt.Fprintf(a.out, "hotcb-go %s%s\ngo:       %s %s\nlibtorch: %s\nshim built with CUDA: %s\nCUDA available: %s\n",
				v.Version, rev, v.Go, v.Platform, v.Libtorch, yesNo(v.BuiltWithCUDA), cuda)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}
