// Package featviz is the FeatureViz callback (hotcb's feat_viz.FeatureVizCallback): every N
// steps it captures the outputs of chosen modules through forward hooks — the first K samples, up
// to C channels — and writes one PNG grid per step and layer (each channel normalised on its own,
// viridis colours, numbered tiles; Linear outputs as a heat strip; a sequence model's [N, T, C]
// as a token × channel heat map per sample and attention weights, [N, heads, T, T] or
// [N, T, T], as one T × T map per head: see sequence.go), optionally the raw tensor as
// .npy, and an index.html gallery (rows = steps, the newest Params.Keep of them; columns = layers)
// that opens from disk.
// Capturing costs one small device-to-host copy on capture steps; drawing, encoding and writing
// happen on a background goroutine behind a bounded queue that drops frames rather than block.
//
//	{"op":"load","id":"fv","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.feat_viz",
//	 "symbol":"FeatureVizCallback"},"init":{"every":100,"layers":["features.*"],"samples":2}}
//
// writes <run dir>/featviz/step00000100_features.0.png (and .npy with npy=true) and
// <run dir>/featviz/index.html. Params are described on Params; set_params changes any of them
// live (layers moves the hooks, out starts a new directory).
package featviz
