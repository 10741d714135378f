// Package data holds the datasets and the batch loader for hotcb-go's training examples and
// `hotcb train`.
//
//   - Shapes generates a deterministic synthetic image classification set (circles, squares,
//     triangles, crosses, …) in pure Go: no download, same seed → same images.
//   - LoadMNIST reads MNIST or Fashion-MNIST IDX files (raw or .gz); ReadIDX parses any IDX file.
//   - Both give a TensorDataset: float32 images [N,C,H,W], normalised, and int64 labels [N].
//   - A Loader cuts any Dataset into batches (shuffled per epoch from a seed, prefetched by a
//     background goroutine, moved to a device): `for b := range loader.Epoch(ctx, e) { … }`.
//   - WriteGrid / SaveClassGrid draw samples into a PNG for eyeballing.
package data
