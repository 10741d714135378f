// Package all imports every built-in callback, so that a program can load any of them by its Go
// or hotcb name:
//
//	import _ "github.com/hotcb/hotcb/callbacks/all"
package all

import (
	_ "github.com/hotcb/hotcb/callbacks/featviz"
	_ "github.com/hotcb/hotcb/callbacks/guard"
	_ "github.com/hotcb/hotcb/callbacks/heartbeat"
	_ "github.com/hotcb/hotcb/callbacks/jsonl"
	_ "github.com/hotcb/hotcb/callbacks/stats"
	_ "github.com/hotcb/hotcb/callbacks/system"
	_ "github.com/hotcb/hotcb/callbacks/timing"
)
