// Package nn holds Go-native neural-network modules over bridge and aten ops — Linear,
// Conv1d/2d/3d, ConvTranspose1d/2d, BatchNorm1d/2d/3d, GroupNorm, InstanceNorm1d/2d/3d,
// LayerNorm, Embedding, EmbeddingBag, Dropout/Dropout2d, Upsample (and Interpolate), PixelShuffle,
// activations, pooling, LSTM/GRU/RNN, MultiheadAttention (and ScaledDotProductAttention),
// TransformerEncoderLayer/TransformerEncoder, the losses of torch.nn.functional beyond the
// bridge's (loss.go), Sequential, ModuleList, ModuleDict, Identity — plus the machinery every module shares:
// named sub-modules and parameters with PyTorch's dotted names ("features.0.weight"),
// train/eval mode, moving to a device, state dicts, forward hooks, and torch.nn.init's
// initialisers (InitXavierUniform, InitKaimingNormal, ...). Each layer has PyTorch's parameter
// names, shapes and default initialisation — after the same seed (bridge.ManualSeed /
// torch.manual_seed) the very same values — and computes what PyTorch's does.
//
// # Writing a module
//
// A module is a struct that embeds nn.Node. Its sub-modules and parameters are its fields:
//
//	type Block struct {
//		nn.Node
//		Norm  *nn.LayerNorm
//		Proj  *nn.Linear
//		Heads []*Head          // registers a ModuleList: heads.0..., heads.1...
//		Scale *bridge.Tensor   // a trainable leaf (SetRequiresGrad(true)): a parameter
//		mask  *bridge.Tensor   // a plain tensor: not registered (as in PyTorch)
//		cache *nn.Linear `nn:"-"` // left out
//	}
//
// The first walk of the tree (Parameters, StateDict, LoadStateDict, Train, To, ZeroGrad, Find,
// hooks ...) registers what the fields hold, as PyTorch's __setattr__ does, and every later walk
// brings the registrations up to date:
//
//   - a field holding a module — a pointer, an interface, or a struct value such as nn.Linear;
//     exported or not — registers it as a child; a slice or array of modules registers an
//     nn.ModuleList child; a map of modules is an error (use nn.ModuleDict);
//   - a *bridge.Tensor field holding a leaf that requires grad registers it as a parameter;
//     `nn:",param"` or `nn:",buffer"` register any tensor as one or the other; other tensors
//     (masks, caches, activations) are plain state;
//   - the name is the field's in snake_case (Proj → proj, LMHead → lm_head, lnF → ln_f,
//     Block1Attn → block1_attn), or the tag's `nn:"name"`; `nn:"-"` leaves the field out;
//   - a struct that embeds a module instead of a Node of its own (struct{ *nn.Linear; ... },
//     struct{ nn.Module; ... }) is that module: the fields of both are its fields;
//   - Add, Param and Buffer still register explicitly, under any name ("c_attn", "fc_weight"), in
//     the order called, before what fields add at the first walk; a field holding what they registered is bound to
//     that registration and adds nothing (so models written with Add keep their names);
//   - assigning a field later replaces what it registered, as assigning a PyTorch attribute does
//     (a new head for fine-tuning; nil drops it);
//   - a field that only refers to a module or tensor registered elsewhere in the tree registers
//     it again under the field's name — a second state-dict key, as in PyTorch (Parameters still
//     lists it once): tag such a reference `nn:"-"`;
//   - what cannot be registered safely panics with a *bridge.Error naming the module and the
//     field: a name taken twice, a field holding an ancestor (a back-reference: tag it "-"), a slice
//     mixing registered and unregistered modules, a non-leaf tensor assigned to a parameter.
//
// A child kept in a field therefore always trains, is saved, moves with To and follows Train.
// Walks read fields under a lock of their own; a Forward that assigns module fields while another
// goroutine walks the model races with it (assign them between steps).
//
// # Shared and tied weights
//
// A tensor registered twice — head.Weight = tok.Weight, or one module in two places — is one
// parameter: Parameters and NamedParameters list it once (under its first name) so an optimizer
// updates it once with the gradient summed over both uses, while StateDict lists it under every
// name and LoadStateDict fills it from any, exactly as PyTorch 1.13's named_parameters and
// state_dict do. NamedModules lists a shared module once; Find finds it under either name.
//
// # Forward
//
// A Module's Forward maps one tensor to one tensor: that is what Sequential chains and what the
// trainer trains. A module with several inputs or outputs — an attention block with a mask, a
// decoder with encoder states, an LSTM with its state — is an AnyModule that declares the Forward
// it needs, e.g. Forward(x, mask *bridge.Tensor) *bridge.Tensor; it is registered, named, saved
// and moved like any other, and its parent calls it directly.
//
// Forward hooks (what feature-map visualisation uses) fire when a module's Forward ends with
// `return n.Fire(x, y)`, as every built-in layer's does, or, with several inputs or outputs,
// `n.FireAll([]*bridge.Tensor{x, mask}, y, h)`: a ForwardHook sees the first input and the first
// output (and the module as an nn.Module view; Unwrap returns the module), a ForwardHookAll sees
// them all. Hooks cost one atomic load when none is registered.
package nn
