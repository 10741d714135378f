// Package checkpoint saves and restores a training run — model state dict, optimizer state,
// step and epoch — in one torch.save file that Python opens as
//
//	ck = torch.load("ckpt.pt")
//	model.load_state_dict(ck["model"]); opt.load_state_dict(ck["optimizer"]); ck["step"], ck["epoch"]
//
// and that Go reads back into the same model and optimizer.
package checkpoint

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// Stateful is what an optimizer (or any other component) offers to be checkpointed.
type Stateful interface {
	StateDict() []bridge.Named
	LoadStateDict([]bridge.Named) error
}

// Info is the position of a run.
type Info struct {
	Step  int64
	Epoch float64
}

// TorchStater is an optimizer whose state dict can be written with torch.optim's own types
// (*optim.Optimizer): Save writes that, so Python's opt.load_state_dict(ck["optimizer"]) takes it.
type TorchStater interface {
	TorchStateDict() *bridge.Value
}

// Save writes model, optional optimizer state and position to path (atomically), as the dict
// {"model": state dict, "optimizer": state dict, "extra": {name: tensor}, "step": int,
// "epoch": float}. The optimizer's state dict is torch.optim's (TorchStateDict) when opt offers
// it, else its StateDict nested at the dots (bridge.Value.NestedDict). extra tensors are stored
// under "extra".
func Save(path string, model nn.Module, opt Stateful, info Info, extra ...bridge.Named) error {
	var v bridge.Value
	n := 3
	if opt != nil {
		n++
	}
	if len(extra) > 0 {
		n++
	}
	v.Dict(n)
	v.Str("model")
	flatDict(&v, nn.StateDict(model))
	if opt != nil {
		v.Str("optimizer")
		if ts, ok := opt.(TorchStater); ok {
			v.Append(ts.TorchStateDict())
		} else if err := v.NestedDict(opt.StateDict(), "."); err != nil {
			var ne *bridge.NameError
			if errors.As(err, &ne) {
				return fmt.Errorf("checkpoint: optimizer state: state dict name %q clashes with another under %q", ne.Name, ne.Prefix)
			}
			return fmt.Errorf("checkpoint: optimizer state: %w", err)
		}
	}
	if len(extra) > 0 {
		v.Str("extra")
		flatDict(&v, extra)
	}
	v.Str("step")
	v.Int(info.Step)
	v.Str("epoch")
	v.Float(info.Epoch)
	return bridge.SaveValue(path, &v)
}

// flatDict writes items as one dict keyed by their names.
func flatDict(v *bridge.Value, items []bridge.Named) {
	v.Dict(len(items))
	for _, it := range items {
		v.Str(it.Name)
		v.Tensor(it.Tensor)
	}
}

// Load restores model (strictly) and, when opt is not nil, the optimizer from path, and returns
// the saved position and the extra tensors. It accepts files written by Save and Python
// checkpoints of the same layout ({"model": state_dict, "optimizer": ..., "step": int}); a file
// holding just a state dict loads into the model with Info zero.
func Load(path string, model nn.Module, opt Stateful) (Info, []bridge.Named, error) {
	items, err := bridge.LoadNamed(path)
	if err != nil {
		return Info{}, nil, err
	}
	var info Info
	var modelItems, optItems, extra []bridge.Named
	nested := false
	for _, it := range items {
		switch {
		case strings.HasPrefix(it.Name, "model."):
			nested = true
			modelItems = append(modelItems, bridge.Named{Name: strings.TrimPrefix(it.Name, "model."), Tensor: it.Tensor})
		case strings.HasPrefix(it.Name, "optimizer."):
			optItems = append(optItems, bridge.Named{Name: strings.TrimPrefix(it.Name, "optimizer."), Tensor: it.Tensor})
		case strings.HasPrefix(it.Name, "extra."):
			extra = append(extra, bridge.Named{Name: strings.TrimPrefix(it.Name, "extra."), Tensor: it.Tensor})
		case it.Name == "step":
			info.Step = it.Tensor.ItemInt()
		case it.Name == "epoch":
			info.Epoch = it.Tensor.Item()
		}
	}
	if !nested { // a bare state dict
		modelItems = items
	}
	if err := nn.LoadStateDict(model, modelItems, true); err != nil {
		return Info{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if opt != nil {
		if len(optItems) == 0 {
			return Info{}, nil, fmt.Errorf("%s: no optimizer state in the checkpoint", path)
		}
		if err := opt.LoadStateDict(optItems); err != nil {
			return Info{}, nil, fmt.Errorf("%s: optimizer: %w", path, err)
		}
	}
	return info, extra, nil
}
