// Package kernel is hotcb's integrated mode: HotKernel drives every control-plane op of a run
// directory. It tails hotcb.commands.jsonl and reconciles hotcb.yaml itself, routes each op to a
// module — cb (the callback controller, which here polls nothing), opt (live optimizer
// hyper-parameters), core (freeze) or one the user registers — records every processed op in the
// append-only ledger hotcb.applied.jsonl, honours hotcb.freeze.json (prod freeze, replay of a
// recipe, replay with adjust patches), and exports recipes.
//
// Restart on an existing run directory: the ledger's seq continues; commands already in the
// commands file are not applied again (they were, by the previous process, and the ledger says
// so); the YAML is reconciled from scratch; and the callback state the previous process built
// from commands (loads, params, enable/disable) is restored by re-applying its applied cb ops
// from the ledger, marked source "replay" with the note "restart". Optimizer and loss changes are
// not re-applied: their effect lives in the checkpoint the loop resumes from.
package kernel
