package trainer

import (
	"fmt"
	"strings"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/jit"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/data"
)

// ScriptFile is the name, in the run directory, of the trained TorchScript module a run of a
// TorchScript model (Options.Model a file) writes at its end.
const ScriptFile = "model.pt"

// loadScript loads the TorchScript classifier at path onto dev and checks that it fits the
// data: one forward of two training images, in eval mode and without gradients, must return a
// floating-point tensor of shape [2, classes]. The module's training flags are as loaded after.
func loadScript(path string, dev bridge.Device, train *data.TensorDataset) (*jit.Module, error) {
	m, err := jit.Load(path, dev)
	if err != nil {
		return nil, err
	}
	if err := checkFits(m, train.Images, int64(len(train.Classes)), dev); err != nil {
		m.Free()
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

// checkFits runs m's forward on the first two images and checks it returns [2, classes] logits.
func checkFits(m *jit.Module, images *bridge.Tensor, classes int64, dev bridge.Device) (err error) {
	modes := trainingModes(m)
	nn.Eval(m)
	defer restoreModes(modes)
	want := fmt.Sprintf("[N, %d]: one logit per class (the data has %d classes)", classes, classes)
	bridge.Scope(func() {
		x := images.Narrow(0, 0, min(2, images.Size(0))).To(dev)
		shape := x.Shape()
		var out any
		var ferr error
		bridge.NoGrad(func() { out, ferr = m.Call("forward", x) })
		if ferr != nil {
			err = fmt.Errorf("the model's forward failed on images of shape %v (N, C, H, W of the data)%s: %s",
				shape, expectedInput(m, shape), torchMessage(ferr))
			return
		}
		y, ok := out.(*bridge.Tensor)
		switch {
		case !ok:
			err = fmt.Errorf("the model's forward returned %s for images of shape %v; hotcb train needs one tensor of shape %s", describeOutput(out), shape, want)
		case !y.DType().IsFloat():
			err = fmt.Errorf("the model's forward returned %s for images of shape %v; hotcb train needs floating-point logits of shape %s", describeOutput(out), shape, want)
		case !y.Shape().Equal(bridge.Shape{shape[0], classes}):
			err = fmt.Errorf("the model's forward returned %s for images of shape %v; hotcb train needs %s", describeOutput(out), shape, want)
		}
	})
	return err
}

// expectedInput says what the model's first Conv2d or Linear (in module order) takes when
// that does not match the data's images of shape x ("" when it matches or cannot tell).
func expectedInput(m nn.Module, x bridge.Shape) string {
	for _, nm := range nn.NamedModules(m) {
		kind := nn.Kind(nm.Module)
		if kind != "Conv2d" && kind != "Linear" {
			continue
		}
		var ws bridge.Shape
		for _, p := range nn.NamedParameters(nm.Module) {
			if p.Name == "weight" {
				ws = p.Tensor.Shape()
			}
		}
		switch {
		case len(x) != 4:
		case kind == "Conv2d" && len(ws) == 4 && ws[1] != x[1]: // weight [out, in, kh, kw] (groups = 1)
			return fmt.Sprintf("; its first Conv2d, %s, expects %d input channels: [N, %d, H, W]", nm.Name, ws[1], ws[1])
		case kind == "Linear" && len(ws) == 2 && ws[1] != x[1:].Numel(): // weight [out, in]
			return fmt.Sprintf("; its first Linear, %s, expects %d input features, and an image has C·H·W = %d", nm.Name, ws[1], x[1:].Numel())
		}
		return ""
	}
	return ""
}

// torchMessage is the error a TorchScript call failed with, without the interpreter's
// tracebacks: the lines after the last "Traceback of TorchScript" header that are not part of
// it ("RuntimeError: Given groups=1, weight of size [8, 3, 3, 3], expected input[2, 1, 28, 28]
// to have 3 channels, but got 1 channels instead").
func torchMessage(err error) string {
	msg := err.Error()
	if be, ok := err.(*bridge.Error); ok {
		msg = be.Msg
	}
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "Traceback of TorchScript") {
			last = i
		}
	}
	if last < 0 {
		return strings.Join(lines, "; ")
	}
	var keep []string
	for _, l := range lines[last+1:] {
		if l != "" && l[0] != ' ' && l[0] != '\t' {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return strings.Join(lines, "; ")
	}
	return strings.Join(keep, "; ")
}

// describeOutput names what a forward returned, for messages.
func describeOutput(x any) string {
	switch x := x.(type) {
	case nil:
		return "None"
	case *bridge.Tensor:
		if d := x.DType(); !d.IsFloat() {
			return fmt.Sprintf("a %s tensor of shape %v", d, x.Shape())
		}
		return fmt.Sprintf("a tensor of shape %v", x.Shape())
	case bridge.Tuple:
		return fmt.Sprintf("a tuple of %d (%s)", len(x), describeItems(x))
	case []any:
		return fmt.Sprintf("a list of %d (%s)", len(x), describeItems(x))
	case map[string]any, map[int64]any:
		return "a dict"
	}
	return fmt.Sprintf("a %T", x)
}

func describeItems(xs []any) string {
	const most = 4
	var parts []string
	for i, x := range xs {
		if i == most {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, describeOutput(x))
	}
	return strings.Join(parts, ", ")
}

type moduleMode struct {
	m  nn.AnyModule
	on bool
}

// trainingModes records each module's training flag, parents before children.
func trainingModes(m nn.Module) []moduleMode {
	var modes []moduleMode
	for _, nm := range nn.NamedModules(m) {
		if t, ok := nm.Module.(interface{ Training() bool }); ok {
			modes = append(modes, moduleMode{nm.Module, t.Training()})
		}
	}
	return modes
}

// restoreModes sets the flags trainingModes recorded (each module's own, in order, as Train
// sets a module's descendants too).
func restoreModes(modes []moduleMode) {
	for _, md := range modes {
		nn.Train(md.m, md.on)
	}
}
