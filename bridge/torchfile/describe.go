package torchfile

import (
	"fmt"
	"io"
)

// Describe tells what r holds, for messages: Sniff's kind, and in words what the file is — for
// a torch.save file, what value it holds ("a torch.save file holding a dict of 20 tensors and
// numbers (a state dict or checkpoint)"), else the kind's String. Package bridge/jit and
// `hotcb train --model` say with it why a file is not TorchScript.
func Describe(r io.ReaderAt, size int64) (Kind, string) {
	k := Sniff(r, size)
	if k != TorchSave {
		return k, k.String()
	}
	what := "a torch.save value"
	if v, err := Read(r, size); err == nil {
		what = describeValue(v)
	}
	return k, "a torch.save file holding " + what
}

// describeValue names what a torch.save file holds.
func describeValue(v any) string {
	switch v := v.(type) {
	case *Dict:
		leaves, _ := Flatten(v)
		return fmt.Sprintf("a dict of %d tensors and numbers (a state dict or checkpoint)", len(leaves))
	case *Object:
		return fmt.Sprintf("a pickled %s object (torch.save(model) pickles the Python class, which Go cannot run)", v.Class)
	case *TensorRef:
		return "one tensor"
	}
	return fmt.Sprintf("a %T", v)
}
