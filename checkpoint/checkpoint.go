// Package checkpoint saves and restores a training run — model state dict, optimizer state,
// step and epoch — in one torch.save file that Python opens as
//
//	ck = torch.load("ckpt.pt")
//	model.load_state_dict(ck["model"]); ck["step"], ck["epoch"], ck["optimizer"]
//
// and that Go reads back into the same model and optimizer.
package checkpoint

import (
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

// Save writes model, optional optimizer state and position to path (atomically). extra tensors
// are stored under "extra".
func Save(path string, model nn.Module, opt Stateful, info Info, extra ...bridge.Named) error {
	var items []bridge.Named
	for _, p := range nn.StateDict(model) {
		items = append(items, bridge.Named{Name: "model/" + p.Name, Tensor: p.Tensor})
	}
	if opt != nil {
		for _, s := range opt.StateDict() {
			items = append(items, bridge.Named{Name: "optimizer/" + strings.ReplaceAll(s.Name, ".", "/"), Tensor: s.Tensor})
		}
	}
	for _, e := range extra {
		items = append(items, bridge.Named{Name: "extra/" + e.Name, Tensor: e.Tensor})
	}
	items = append(items,
		bridge.Named{Name: "step", Tensor: bridge.Scalar(float64(info.Step), bridge.Int64)},
		bridge.Named{Name: "epoch", Tensor: bridge.Scalar(info.Epoch, bridge.Float64)})
	return bridge.SaveNamed(path, items)
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
