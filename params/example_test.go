package params_test

import (
	"fmt"
	"time"

	"github.com/hotcb/hotcb/params"
)

type timingParams struct {
	Every    int           `hotcb:"every,min=1"`
	SyncCUDA bool          // key "sync_cuda"
	Window   time.Duration // "250ms", or seconds
	Mode     string        `hotcb:"mode,oneof=host|cuda|both"`
	Layers   []string      // ["a","b"] or "a,b"
}

func Example() {
	p := timingParams{Every: 50, Mode: "host"} // the callback's defaults

	// `hotcb cb set_params timing every=10 window=0.5 layers=conv1,fc` (CLI values are text).
	err := params.Decode(map[string]any{"every": "10", "window": "0.5", "layers": "conv1,fc"}, &p)
	fmt.Println(err, p.Every, p.Window, p.Layers)

	// A typo and a bad value: both reported, and p keeps every old value.
	err = params.Decode(map[string]any{"evry": 10, "mode": "gpu", "sync_cuda": true}, &p)
	fmt.Println(err)
	fmt.Println(p.SyncCUDA)

	fmt.Println(params.Keys(p))
	fmt.Println(params.Encode(p))
	// Output:
	// <nil> 10 500ms [conv1 fc]
	// param "evry": unknown key (did you mean "every"?); valid keys: every, sync_cuda, window, mode, layers
	// param "mode": want one of host, cuda, both (oneof=host|cuda|both), got "gpu"
	// false
	// [every sync_cuda window mode layers]
	// map[every:10 layers:[conv1 fc] mode:host sync_cuda:false window:500ms]
}
