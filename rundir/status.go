package rundir

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hotcb/hotcb/ops"
)

// CallbackStatus is one callback's row in the status file.
type CallbackStatus struct {
	ID            string              `json:"id"`
	Enabled       bool                `json:"enabled"`
	Loaded        bool                `json:"loaded"`
	Target        *ops.CallbackTarget `json:"target,omitempty"`
	Init          map[string]any      `json:"init,omitempty"`
	Params        map[string]any      `json:"params,omitempty"`
	PendingParams map[string]any      `json:"pending_params,omitempty"`
	Calls         int64               `json:"calls"`
	Errors        int64               `json:"errors"`
	LastError     string              `json:"last_error,omitempty"`
	LastErrorStep int64               `json:"last_error_step,omitempty"`
	MeanMicros    float64             `json:"mean_us"`
	MaxMicros     float64             `json:"max_us"`
}

// RunStatus is what hotcb.status.json holds: the snapshot a controller rewrites about once a
// second (controller.HotController writes it, `hotcb status` reads it).
type RunStatus struct {
	WrittenAt    time.Time        `json:"written_at"`
	PID          int              `json:"pid"`
	Step         int64            `json:"step"`
	Epoch        float64          `json:"epoch"`
	Phase        string           `json:"phase,omitempty"`
	Callbacks    []CallbackStatus `json:"callbacks"`
	CommandsPath string           `json:"commands_path,omitempty"`
	CommandsRead int64            `json:"commands_offset"`
	BadLines     int              `json:"bad_lines"`
	ConfigPath   string           `json:"config_path,omitempty"`
	ControlError string           `json:"control_error,omitempty"`
	// Extra carries what an embedding component adds (the kernel: freeze mode, ledger seq,
	// optimizer hyper-parameters).
	Extra map[string]any `json:"extra,omitempty"`
}

// ReadStatus reads a status file written by a controller.
func ReadStatus(path string) (*RunStatus, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st RunStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: not a hotcb status file: %v", path, err)
	}
	return &st, nil
}
