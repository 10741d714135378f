package rundir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
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
	// Stuck is the watchdog's report of a safe point that has not returned (written by the
	// watchdog, since the training goroutine is the one stuck).
	Stuck *Stuck `json:"stuck,omitempty"`
	// Extra carries what an embedding component adds (the kernel: freeze mode, ledger seq,
	// optimizer hyper-parameters).
	Extra map[string]any `json:"extra,omitempty"`
}

// Stuck describes a safe point that has not returned for longer than the controller's StuckAfter.
type Stuck struct {
	// Callback is the id of the callback the safe point is stuck in; empty when it is stuck
	// elsewhere (an op being applied, a module) or the callback could not be told.
	Callback string `json:"callback,omitempty"`
	// Call is what is running: "Handle(train_step_end)", "OnAttach", ... for a go_file callback;
	// the innermost function of the training goroutine's stack otherwise.
	Call      string    `json:"call"`
	Event     string    `json:"event"`
	Step      int64     `json:"step"`
	Since     time.Time `json:"since"`
	Abandoned bool      `json:"abandoned,omitempty"`
	// Abandonable says whether the stuck call can be abandoned (a go_file callback's).
	Abandonable bool `json:"abandonable"`
}

func (s *Stuck) String() string {
	who := "outside any callback"
	if s.Callback != "" {
		who = "in callback " + s.Callback
	}
	return fmt.Sprintf("the safe point of step %d (%s) is stuck %s, in %s, for %v", s.Step, s.Event, who, s.Call,
		time.Since(s.Since).Round(time.Second))
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

// MarshalJSON writes the callback's init and params with whole floats as 2.0 (params.ForJSON),
// as commands and the ledger have them, so that UnmarshalJSON gives back the values' types.
func (c CallbackStatus) MarshalJSON() ([]byte, error) {
	type plain CallbackStatus // without the method
	p := plain(c)
	p.Init, p.Params, p.PendingParams = params.ForJSONMap(c.Init), params.ForJSONMap(c.Params), params.ForJSONMap(c.PendingParams)
	return json.Marshal(p)
}

// UnmarshalJSON reads the callback's init and params in the one form of numbers
// (params.Normalize): 3 an int64, 2.0 and 0.5 float64s.
func (c *CallbackStatus) UnmarshalJSON(b []byte) error {
	type plain CallbackStatus // without the method
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	for _, m := range []*map[string]any{&p.Init, &p.Params, &p.PendingParams} {
		n, err := params.NormalizeMap(*m)
		if err != nil {
			return fmt.Errorf("callback %s: %v", p.ID, err)
		}
		*m = n
	}
	*c = CallbackStatus(p)
	return nil
}
