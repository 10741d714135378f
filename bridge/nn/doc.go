// Package nn holds Go-native neural-network modules over bridge ops: Linear, Conv2d, BatchNorm2d,
// LayerNorm, Embedding, Dropout, activations, pooling and Sequential, plus the machinery every
// module shares — named sub-modules and parameters with PyTorch's dotted names
// ("features.0.weight"), train/eval mode, moving to a device, state dicts, and forward hooks.
//
// A custom module is a struct that embeds nn.Node, registers its children with Add and its own
// tensors with Param/Buffer, and implements Forward. Forward hooks (what feature-map
// visualisation uses) fire when a module's Forward ends with `return n.Fire(x, y)`, as every
// built-in layer does; they cost one atomic load when none is registered.
package nn
