/*
 * hotcb_torch.h — the C ABI between hotcb-go and libtorch.
 *
 * Rules (docs/design.md explains them):
 *  - Pure C, plain types, opaque handles. Built into build/libhotcb_torch.so so that the Go side
 *    can run against a CPU shim (Debian libtorch 1.13) or a CUDA shim (libtorch 2.x) unchanged.
 *  - Every function that can fail returns hc_err: NULL on success, otherwise a message allocated
 *    with malloc that the caller releases with hc_free. Errors are returned by the same call that
 *    failed; there is no thread-local "last error" (a goroutine may change OS threads between two
 *    cgo calls). No C++ exception ever leaves this library.
 *  - A tensor handle owns one reference to an at::Tensor. Release it exactly once, with
 *    hc_tensor_free. A NULL handle stands for an undefined tensor (an absent bias, a missing grad).
 *  - Grad mode is per OS thread inside libtorch: callers that change it must stay on one thread.
 */
#ifndef HOTCB_TORCH_H
#define HOTCB_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only what this header declares is exported from the shared library. */
#define HC_API __attribute__((visibility("default")))

typedef struct hc_tensor_s *hc_tensor;
typedef struct hc_event_s *hc_event;
typedef char *hc_err;

/* Element types. Our own numbering, stable across libtorch versions. */
enum hc_dtype {
  HC_FLOAT32 = 0,
  HC_FLOAT64 = 1,
  HC_FLOAT16 = 2,
  HC_BFLOAT16 = 3,
  HC_INT64 = 4,
  HC_INT32 = 5,
  HC_UINT8 = 6,
  HC_BOOL = 7,
  HC_INT8 = 8,
  HC_INT16 = 9
};

/* Devices are ints: HC_CPU, or a CUDA ordinal >= 0. */
#define HC_CPU (-1)
/* In HC_TO: keep the tensor's current device or dtype. */
#define HC_KEEP (-2)

/* Loss reductions. */
enum hc_reduction { HC_REDUCE_NONE = 0, HC_REDUCE_MEAN = 1, HC_REDUCE_SUM = 2 };

/*
 * Operations run through hc_call. Arguments: tensors t[], integers i[], doubles d[]; results
 * are written to out[] (NULL where a result is undefined). "t2?" marks an optional tensor (NULL
 * handle allowed). "dims..." means the rest of i[]. In-place ops (suffix _) write no result.
 */
enum hc_op {
  /* creation: i0 dtype, i1 device, then the shape in i2... */
  HC_ZEROS = 1, HC_ONES, HC_EMPTY,
  HC_FULL,    /* d0 value */
  HC_RAND,    /* uniform [0,1) */
  HC_RANDN,   /* standard normal */
  HC_RANDINT, /* d0 low, d1 high (exclusive) */
  HC_ARANGE,  /* i0 dtype, i1 device; d0 start, d1 end, d2 step (no shape) */
  HC_EYE,     /* i0 dtype, i1 device, i2 n, i3 m */

  /* elementwise unary: t0. The plain ones (neg, exp, log, relu, sigmoid, ...) are generated
   * (hc_aten); the numbers they had stay unused, so a stale shim fails instead of running
   * another op. */
  HC_GELU = 28,  /* i0: 1 = tanh approximation */
  HC_CLAMP = 34, /* d0 min, d1 max, i0 bit0: has min, bit1: has max */

  /* elementwise binary: t0, t1 (mul, div, pow, comparisons, logical ops: generated) */
  HC_ADD = 40, /* d0 alpha: t0 + alpha*t1 */
  HC_SUB,      /* d0 alpha: t0 - alpha*t1 */

  /* tensor (t0) with a scalar d0; a whole-number d0 keeps an integer tensor's dtype */
  HC_ADD_S = 60, HC_SUB_S, HC_MUL_S, HC_DIV_S, HC_POW_S, HC_RSUB_S,
  HC_EQ_S, HC_NE_S, HC_GT_S, HC_LT_S, HC_GE_S, HC_LE_S,

  /* linear algebra (matmul, mm): generated */

  /* reductions over all elements of t0 (0-d result) */
  HC_SUM = 90, HC_MEAN, HC_MAX, HC_MIN, HC_ANY, HC_ALL,
  /* reductions over dims: i0 keepdim, dims... (no dims = all) */
  HC_SUM_DIM, HC_MEAN_DIM,
  HC_ANY_DIM, HC_ALL_DIM, /* i0 keepdim, i1 dim (one dim only) */
  HC_STD, HC_VAR, /* i0 keepdim, i1 unbiased, dims... */
  HC_NORM,        /* d0 p, i0 keepdim, dims... */
  HC_MAX_DIM, HC_MIN_DIM, /* i0 dim, i1 keepdim; out0 values, out1 indices */
  HC_ARGMAX, HC_ARGMIN,   /* i0 dim, i1 keepdim; no ints = over the flattened tensor */
  HC_SOFTMAX, HC_LOG_SOFTMAX, /* i0 dim */

  /* shape and indexing */
  HC_RESHAPE = 120, HC_VIEW, HC_EXPAND, HC_PERMUTE, /* i: shape or dims */
  HC_TRANSPOSE,   /* i0, i1 */
  HC_UNSQUEEZE,   /* i0 dim */
  HC_SQUEEZE,     /* no ints: all size-1 dims; i0: that dim */
  HC_FLATTEN,     /* i0 start, i1 end */
  HC_NARROW,      /* i0 dim, i1 start, i2 length */
  HC_SLICE,       /* i0 dim, i1 start, i2 end, i3 step */
  HC_CAT, HC_STACK, /* t: all inputs, i0 dim */
  HC_INDEX_SELECT,  /* t0 input, t1 index, i0 dim */
  HC_GATHER,        /* t0 input, t1 index, i0 dim */
  HC_MASKED_FILL,   /* t0 input, t1 mask, d0 value */
  HC_WHERE,         /* t0 condition, t1 where true, t2 where false */
  HC_CONTIGUOUS, HC_CLONE, HC_DETACH,
  HC_TO,            /* i0 device or HC_KEEP, i1 dtype or HC_KEEP, i2 non_blocking, i3 copy */
  HC_ONE_HOT,       /* i0 num_classes (-1: infer) */
  HC_AS_STRIDED,    /* i0 ndim n, sizes[n], strides[n], storage offset */

  /* neural-network functions */
  HC_LINEAR = 150,  /* t0 x, t1 weight, t2? bias */
  HC_CONV2D,        /* t0 x, t1 weight, t2? bias; i: stride[2], padding[2], dilation[2], groups */
  HC_MAX_POOL2D,    /* t0; i: kernel[2], stride[2], padding[2], dilation[2], ceil_mode */
  HC_AVG_POOL2D,    /* t0; i: kernel[2], stride[2], padding[2], ceil_mode, count_include_pad */
  HC_ADAPTIVE_AVG_POOL2D, /* t0; i: output size[2] */
  HC_BATCH_NORM,    /* t0 x, t1? weight, t2? bias, t3? running_mean, t4? running_var,
                       t5? num_batches_tracked (when training: += 1 first, autograd off);
                       i0 training; d0 momentum, d1 eps */
  HC_LAYER_NORM,    /* t0 x, t1? weight, t2? bias; i: normalized_shape; d0 eps */
  HC_DROPOUT,       /* t0; d0 p; i0 train */
  HC_EMBEDDING,     /* t0 weight, t1 indices; i0 padding_idx (-1: none) */
  HC_CROSS_ENTROPY, /* t0 logits, t1 target, t2? class weight; i0 reduction, i1 ignore_index;
                       d0 label_smoothing */
  HC_NLL_LOSS,      /* t0 log-probs, t1 target, t2? weight; i0 reduction, i1 ignore_index */
  HC_MSE_LOSS, HC_L1_LOSS, /* t0 input, t1 target; i0 reduction */
  HC_BCE_WITH_LOGITS,      /* t0 logits, t1 target, t2? weight, t3? pos_weight; i0 reduction */

  /* autograd */
  HC_GRAD = 180,         /* t0 -> its .grad (NULL if none) */
  HC_SET_REQUIRES_GRAD,  /* t0; i0 flag */
  HC_BACKWARD,           /* t0, t1? gradient; i0 retain_graph, i1 create_graph */
  HC_ZERO_GRAD,          /* t0; i0 set_to_none */

  /* in place on t0 (for optimizers); no result */
  HC_ADD_ = 200,  /* t1, d0 alpha */
  HC_ADD_S_, HC_MUL_S_, HC_DIV_S_, /* d0 */
  HC_MUL_, HC_DIV_, /* t1 */
  HC_ADDCMUL_, HC_ADDCDIV_, /* t1, t2, d0 value: t0 += value * t1 (op) t2 */
  HC_ZERO_, HC_FILL_, /* d0 */
  HC_COPY_,  /* t1 source */
  HC_SQRT_, HC_CLAMP_, /* as HC_CLAMP */
  HC_LERP_S_, /* t1 end, d0 weight */
  HC_ADD_GRAD_, /* d0 alpha: t0 += alpha * t0.grad; i0: then drop the grad (set_to_none) */
  HC_SET_DATA_, /* t1: t0 now holds t1's data (any device/dtype), keeping its identity and
                   requires_grad — what Module.to() does to parameters */
  HC_ADD_GRADS_ /* every t: t += d0 * t.grad with autograd off, skipping tensors without a grad;
                   i0: then drop each grad (set_to_none). One call for a whole SGD update. */
};

/* Runs one operation. Returns NULL or an error naming what libtorch rejected. */
HC_API hc_err hc_call(int op, const hc_tensor *t, int nt, const int64_t *i, int ni, const double *d,
               int nd, hc_tensor *out, int nout);

/* Tensors */
HC_API hc_err hc_from_data(const void *data, int dtype, const int64_t *shape, int ndim, int device,
                    hc_tensor *out);
/* Fills what is non-NULL. shape must hold 16 entries; *ndim may exceed 16 (then shape is partial). */
HC_API hc_err hc_tensor_info(hc_tensor t, int *dtype, int *device, int *ndim, int64_t *shape,
                      int *requires_grad);
/* Copies t (any device, any dtype) converted to dtype into dst, which holds numel elements. */
HC_API hc_err hc_copy_out(hc_tensor t, int dtype, void *dst, int64_t numel);
HC_API hc_err hc_item(hc_tensor t, double *as_double, int64_t *as_int);
HC_API hc_err hc_to_string(hc_tensor t, char **out);
/* Releases a handle; explicit_free=1 subtracts its bytes from hc_pressure_bytes (the Go bridge
 * always passes 1). */
HC_API void hc_tensor_free(hc_tensor t, int explicit_free);
/* Frees n handles as explicit frees (NULL entries are skipped): the end of a Go bridge.Scope, or
 * a batch the Go garbage collector found unreachable. */
HC_API void hc_tensor_free_many(const hc_tensor *t, int n);
/* The scope slot of the calling OS thread (0: none). The Go bridge sets it while a Scope runs on a
 * goroutine locked to this thread, and asks for it when wrapping a new handle. hc_scope_set
 * returns the previous slot. */
HC_API int32_t hc_scope_current(void);
HC_API int32_t hc_scope_set(int32_t slot);
/* Native bytes held through live handles (a fixed cost per handle plus its data): allocations
 * minus explicit frees, and the Go bridge frees every handle explicitly. It reports this as live
 * bytes and adds what its collections released to decide when the garbage collector must run. */
extern HC_API int64_t hc_pressure_bytes;

/* Generated ATen ops (cmd/atengen; package aten). op is an index into the generated table; the
 * arguments come in four streams — tensor handles t, int64 i (a tag before each non-tensor
 * argument, then its values), doubles d, string bytes s — decoded into the types the op declares
 * in this libtorch (cpp/aten_call.h). Results: tensors in out[0..nout) (in-place and out= results
 * are the caller's own arguments and are not written), a list in *list and *nlist (allocated
 * with malloc, freed with hc_free), a number in iout[0] (its tag) and iout[1] or *dout. */
HC_API hc_err hc_aten(int32_t op, const hc_tensor *t, int32_t nt, const int64_t *i, int32_t ni,
                      const double *d, int32_t nd, const char *s, int32_t ns, hc_tensor *out,
                      int32_t nout, hc_tensor **list, int64_t *nlist, int64_t *iout, double *dout);
/* The number of generated ops in this shim, and the hash of their table: the Go side refuses a
 * shim whose table differs from its own. */
HC_API int32_t hc_aten_count(void);
HC_API const char *hc_aten_table_hash(void);

/* Any op registered with libtorch's dispatcher, called by name through its boxed calling
 * convention (cpp/aten_boxed.cpp; package aten's CallOp). hc_aten_lookup finds name
 * ("aten::tril", "aten::add.Tensor"; no overload means the default one) and sets *id for
 * hc_aten_boxed and *schema (malloc'd) to the registered schema. An op that is not registered is
 * not an error: *id is -1, and *overloads (malloc'd, or NULL when no op has that name) lists the
 * name's overloads, one per line. */
HC_API hc_err hc_aten_lookup(const char *name, int32_t nname, int32_t *id, char **schema,
                             char **overloads);
/* What hc_aten_boxed returned: one value per return of the op's schema, encoded as the arguments
 * are (cpp/aten_call.h's tags; every tensor is tagged, tuples too), in arrays allocated with
 * malloc. hc_aten_values_free releases the arrays, not the tensor handles: those are the
 * caller's. */
typedef struct hc_aten_values {
  hc_tensor *t;
  int32_t nt;
  int64_t *i;
  int32_t ni;
  double *d;
  int32_t nd;
  char *s;
  int32_t ns;
} hc_aten_values;
/* Calls op id (hc_aten_lookup) with arguments in hc_aten's four streams, every argument tagged
 * (tensors too), in the schema's order; a named argument may follow the positional ones, and
 * arguments left out take the schema's defaults. Each is converted to what the schema declares
 * (an error names the argument otherwise). */
HC_API hc_err hc_aten_boxed(int32_t id, const hc_tensor *t, int32_t nt, const int64_t *i,
                            int32_t ni, const double *d, int32_t nd, const char *s, int32_t ns,
                            hc_aten_values *out);
HC_API void hc_aten_values_free(hc_aten_values *v);

/* Autograd with Go in it (cpp/autograd.cpp). Go installs two callbacks once: the backward of a
 * custom function (bridge.Function) and a tensor gradient hook. Each gets its Go-side id, the
 * gradients as new handles the Go side owns, and writes its results as new references
 * (hc_tensor_ref) that the shim takes over; a non-zero return and *err (malloc'd) is an error.
 * libtorch drops functions and hooks in destructors, which must not call Go: their ids are
 * queued and collected with hc_autograd_released. The entry points that run backward passes
 * (and so may call Go) are these, not hc_call. */
typedef int (*hc_go_backward_fn)(int64_t id, hc_tensor *grads, int n, hc_tensor *out, int nout, char **err);
typedef int (*hc_go_hook_fn)(int64_t id, hc_tensor grad, hc_tensor *out, char **err);
HC_API void hc_autograd_set_callbacks(hc_go_backward_fn backward, hc_go_hook_fn hook);
HC_API int32_t hc_autograd_released(int64_t *ids, int32_t cap);
/* A new handle holding another reference to t's tensor (not counted as memory pressure). */
HC_API hc_tensor hc_tensor_ref(hc_tensor t);
/* Makes outputs (computed without recording from inputs) differentiable through Go function id:
 * attached[k] is outputs[k] with that history. */
HC_API hc_err hc_autograd_attach(int64_t id, const hc_tensor *inputs, int32_t nin, const hc_tensor *outputs,
                                 int32_t nout, hc_tensor *attached);
/* t.backward(grad, retain_graph (-1: default), create_graph). */
HC_API hc_err hc_autograd_backward(hc_tensor t, hc_tensor grad, int32_t retain, int32_t create);
/* torch::autograd::grad: grads[k] of the outputs with respect to inputs[k] (NULL: unused). */
HC_API hc_err hc_autograd_grad(const hc_tensor *outputs, int32_t nout, const hc_tensor *grad_outputs,
                               const hc_tensor *inputs, int32_t nin, int32_t retain, int32_t create,
                               int32_t allow_unused, hc_tensor *grads);
HC_API hc_err hc_register_hook(hc_tensor t, int64_t id, int64_t *pos);
HC_API hc_err hc_remove_hook(hc_tensor t, int64_t pos);
/* Anomaly mode (global in libtorch): returns the previous setting. */
HC_API int32_t hc_anomaly_set(int32_t on);
/* Autocast on the calling thread for a device kind (HC_CPU, or any CUDA ordinal for CUDA), with
 * the previous state returned; hc_autocast_nesting(+1/-1) brackets a region (the cast cache is
 * cleared when the outermost one ends). */
HC_API hc_err hc_autocast_set(int32_t device, int32_t enabled, int32_t dtype, int32_t *was_enabled, int32_t *was_dtype);
HC_API int32_t hc_autocast_nesting(int32_t delta);
/* The default CPU generator's state, and setting it back (recomputation repeats its draws). */
HC_API hc_err hc_rng_state(hc_tensor *out);
HC_API hc_err hc_rng_set_state(hc_tensor state);

/* Serialization in torch.save's zip/pickle format: Python's torch.load reads the buffer, which is
 * freed with hc_free. (Reading is done in Go: bridge/torchfile.)
 * The value is any Python value built of None, bool, int, float, str, tensors (written detached,
 * from the CPU), lists, tuples and dicts (keys all int or all str), given in prefix form
 * (bridge.Value): codes are tags in depth-first order, each followed by its own ints — 0 None,
 * 1 bool (then 0 or 1), 2 int (then the value), 3 float (the next of f), 4 str (the next of the ns
 * NUL-terminated strings in s), 5 tensor (the next of t), 6 list / 7 tuple / 8 dict (then the
 * length n, then n values or n key-value pairs). Malformed streams are an error naming the
 * problem; every stream must be used up. */
HC_API hc_err hc_save_value(const int64_t *codes, int64_t nc, const double *f, int64_t nf, const char *s,
                            int64_t ns, const hc_tensor *t, int64_t nt, char **buf, int64_t *len);

/* A value the shim hands back, in the prefix form of hc_save_value: codes (nc), floats (nf), ns
 * NUL-terminated strings one after the other in s, and nt new tensor handles (NULL for an
 * undefined tensor) that the caller owns. The four arrays are malloc'd: free each with hc_free. */
typedef struct hc_value_out {
  int64_t *codes;
  int64_t nc;
  double *f;
  int64_t nf;
  char *s;
  int64_t ns;
  hc_tensor *t;
  int64_t nt;
} hc_value_out;

/* TorchScript modules (torch.jit.save files; cpp/jit.cpp). A module handle owns the loaded
 * module; free it with hc_jit_free. Its modules are numbered depth first, the root 0, as
 * hc_jit_tree lists them. */
typedef struct hc_module_s *hc_module;
/* Loads path (torch::jit::load) onto device (HC_CPU or a CUDA ordinal). */
HC_API hc_err hc_jit_load(const char *path, int device, hc_module *out);
HC_API void hc_jit_free(hc_module m);
/* The module tree: a list with, per module, the tuple (dotted name, type's qualified name,
 * training, [(name, is_buffer, tensor) ...] its own parameters then buffers, [method names]).
 * The tensors are the module's own (shared, not copies). */
HC_API hc_err hc_jit_tree(hc_module m, hc_value_out *out);
/* Calls method of module number module with the arguments in the value (a tuple; tensors are
 * passed as they are; a list or dict gets the type its elements share) and returns its result. */
HC_API hc_err hc_jit_call(hc_module m, int64_t module, const char *method, const int64_t *codes, int64_t nc,
                          const double *f, int64_t nf, const char *s, int64_t ns, const hc_tensor *t, int64_t nt,
                          hc_value_out *out);
/* Sets one module's training flag (not its children's). */
HC_API hc_err hc_jit_set_training(hc_module m, int64_t module, int on);
/* The submodules (not the root) whose forward inputs and outputs the next calls record; n = 0
 * records none. */
HC_API hc_err hc_jit_watch(hc_module m, const int64_t *modules, int64_t n);
/* What the last call recorded, in the order the forwards returned: a list of (module, [input tensors], [output
 * tensors]); *dropped counts forwards past the limit (4096 a call) that were not recorded. */
HC_API hc_err hc_jit_taps(hc_module m, hc_value_out *out, int64_t *dropped);
/* The module in torch.jit.save's format (freed with hc_free), as it was scripted (no taps). */
HC_API hc_err hc_jit_save(hc_module m, char **buf, int64_t *len);

/* Distributed training on torch.distributed's c10d (cpp/dist.cpp): a TCPStore, process groups
 * (Gloo; NCCL in CUDA builds), collectives and DDP's gradient Reducer. Nothing here waits without
 * a bound: store calls take a timeout, and a group's timeout bounds its collectives (a call may
 * pass a shorter or longer one; 0 keeps the group's) and its DDP reductions. A dead or silent peer
 * is then an error naming the operation, the rank and the timeout. Every handle is released once
 * with its _free function; a group keeps its store alive and a DDP handle its group, so they may
 * be freed in any order. Freeing a group whose peers are gone may wait for its pending operations
 * to time out. */
typedef struct hc_store_s *hc_store;
typedef struct hc_pg_s *hc_pg;
typedef struct hc_ddp_s *hc_ddp;

/* The store of world_size ranks at host:port: rank 0 serves it (port 0 picks a free one, see
 * hc_store_port), the others connect (retrying until rank 0 listens). Every rank returns once
 * all world_size have joined, or fails after timeout_ms saying how many did. */
HC_API hc_err hc_store_new(const char *host, int32_t port, int32_t rank, int32_t world_size, int64_t timeout_ms,
                           hc_store *out);
HC_API void hc_store_free(hc_store s);
/* The port the store listens on (rank 0) or connected to. */
HC_API int32_t hc_store_port(hc_store s);
HC_API hc_err hc_store_set(hc_store s, const char *key, const void *value, int64_t n);
/* Waits up to timeout_ms for key to be set, then returns its value (malloc'd; hc_free). */
HC_API hc_err hc_store_get(hc_store s, const char *key, int64_t timeout_ms, char **value, int64_t *n);
/* Adds delta to the integer at key (a key not set counts as 0) and returns the new value. */
HC_API hc_err hc_store_add(hc_store s, const char *key, int64_t delta, int64_t *out);
/* Waits up to timeout_ms until every key is set. */
HC_API hc_err hc_store_wait(hc_store s, const char *const *keys, int32_t n, int64_t timeout_ms);
/* *all_set: whether every key is set now (no waiting). */
HC_API hc_err hc_store_check(hc_store s, const char *const *keys, int32_t n, int32_t *all_set);
/* *deleted: whether key was there. */
HC_API hc_err hc_store_delete(hc_store s, const char *key, int32_t *deleted);

enum hc_backend { HC_GLOO = 0, HC_NCCL = 1 };
/* Reductions. AVG is a SUM divided by the world size (floating-point tensors only). */
enum hc_reduce_op { HC_RED_SUM = 0, HC_RED_AVG, HC_RED_MIN, HC_RED_MAX, HC_RED_PRODUCT };

/* A process group of world_size ranks rendezvousing through the store under keys prefixed with
 * name (every rank passes the same name; one name per group). Returns when every rank has joined,
 * or fails after timeout_ms. Gloo's network device: device "" is the host name's address, "if:NAME"
 * the interface NAME, anything else a host name or address to bind (127.0.0.1 for one machine).
 * NCCL (CUDA builds only) ignores device. */
HC_API hc_err hc_pg_new(hc_store s, int32_t backend, const char *name, const char *device, int32_t rank,
                        int32_t world_size, int64_t timeout_ms, hc_pg *out);
HC_API void hc_pg_free(hc_pg g);
/* Collectives, in place on t, which every rank passes with the same shape and dtype; each waits at
 * most timeout_ms (0: the group's timeout). */
HC_API hc_err hc_pg_all_reduce(hc_pg g, hc_tensor t, int32_t op, int64_t timeout_ms);
HC_API hc_err hc_pg_broadcast(hc_pg g, hc_tensor t, int32_t src, int64_t timeout_ms);
/* out[r] (world_size new handles) is rank r's t. */
HC_API hc_err hc_pg_all_gather(hc_pg g, hc_tensor t, hc_tensor *out, int64_t timeout_ms);
HC_API hc_err hc_pg_barrier(hc_pg g, int64_t timeout_ms);
/* Overwrites the n tensors (any dtypes) with src's, sent in flattened buckets of up to
 * bucket_bytes (c10d's broadcast_coalesced: what DDP uses for parameters and buffers). */
HC_API hc_err hc_pg_broadcast_coalesced(hc_pg g, const hc_tensor *t, int32_t n, int32_t src, int64_t bucket_bytes);

/* DDP's c10d::Reducer over the n parameters (leaves requiring grad, one device; every rank passes
 * the same list in the same order: checked). It hooks their gradient accumulators: a backward
 * pass that follows hc_ddp_prepare_backward averages the gradients over the group in buckets
 * while the pass runs, as torch.nn.parallel.DistributedDataParallel does; a backward pass without
 * it accumulates local gradients only (DDP's no_sync). Buckets: one until the first backward
 * pass, then rebuilt in the order gradients arrived, up to first_bucket_bytes for the first and
 * bucket_cap_bytes for the rest (PyTorch 1.13: 1 MiB and 25 MiB). names (NULL allowed) name the
 * parameters in the Reducer's messages. */
HC_API hc_err hc_ddp_new(hc_pg g, const hc_tensor *params, int32_t n, const char *const *names,
                         int64_t bucket_cap_bytes, int64_t first_bucket_bytes, int32_t find_unused, hc_ddp *out);
HC_API void hc_ddp_free(hc_ddp d);
/* Before a forward pass with grad enabled: rebuilds the buckets after the first backward pass
 * (*rebuilt = 1 then). */
HC_API hc_err hc_ddp_pre_forward(hc_ddp d, int32_t *rebuilt);
/* After that forward pass, before its backward: outputs are the forward's tensors (searched for
 * unused parameters when find_unused was set; ignored otherwise). */
HC_API hc_err hc_ddp_prepare_backward(hc_ddp d, const hc_tensor *outputs, int32_t n);
/* bucket[k] (n entries) is the bucket of parameter k, buckets numbered in reduction order;
 * *nbuckets their number. */
HC_API hc_err hc_ddp_buckets(hc_ddp d, int32_t *bucket, int32_t n, int32_t *nbuckets);
/* The times of DDP's iterations, from c10d's own DDP Logger (torch.nn.parallel's
 * DistributedDataParallel._get_ddp_logging_data), in nanoseconds; an iteration is a forward pass
 * with grad (hc_ddp_pre_forward) and the backward pass after it. c10d measures an iteration when
 * the next one begins (at hc_ddp_pre_forward, as PyTorch does at the start of forward): between
 * two forward passes the latest measured is the one before. out[] (n = HC_DDP_NSTATS entries)
 * is indexed by hc_ddp_stat. Times from the host clock on the CPU, from CUDA events on a GPU. */
enum hc_ddp_stat {
  HC_DDP_ITERATION = 0,       /* the latest iteration measured (forward passes counted from 1), 0: none yet */
  HC_DDP_FORWARD_NS,          /* hc_ddp_pre_forward to hc_ddp_prepare_backward */
  HC_DDP_BACKWARD_COMPUTE_NS, /* hc_ddp_prepare_backward to the last gradient ready */
  HC_DDP_BACKWARD_COMM_NS,    /* the first bucket's all-reduce started to the last one done */
  HC_DDP_OVERLAP_NS,          /* the first bucket's all-reduce started to the last gradient ready */
  HC_DDP_WAIT_NS,             /* COMM - OVERLAP: the all-reduce not hidden behind the backward
                               * pass, i.e. the last gradient ready to the last all-reduce done */
  HC_DDP_MEASURED,            /* iterations measured so far (those with a backward pass) */
  HC_DDP_TOTAL_WAIT_NS,       /* their WAIT summed */
  HC_DDP_TOTAL_COMM_NS,       /* their BACKWARD_COMM summed */
  HC_DDP_NSTATS
};
HC_API hc_err hc_ddp_stats(hc_ddp d, int64_t *out, int32_t n);
/* Measure every `every` iterations (and the first 10): 1 (the default) measures each; on CUDA
 * measuring waits for the previous iteration's events at the next forward pass. every <= 0 stops
 * measuring. */
HC_API hc_err hc_ddp_set_stats_every(hc_ddp d, int32_t every);

/* Runtime */
HC_API void hc_free(void *p);
HC_API hc_err hc_manual_seed(uint64_t seed);
HC_API void hc_set_num_threads(int n);
/* Sets glibc malloc's trim and mmap thresholds (mallopt M_TRIM_THRESHOLD, M_MMAP_THRESHOLD).
 * Returns 1 when both were applied, 0 when refused or not glibc. */
HC_API int hc_malloc_tune(int64_t trim_threshold, int64_t mmap_threshold);
HC_API int hc_get_num_threads(void);
HC_API void hc_set_grad_enabled(int enabled);
HC_API int hc_is_grad_enabled(void);
/* libtorch version "1.13.0" and whether this shim was built with CUDA. */
HC_API const char *hc_torch_version(void);
HC_API int hc_built_with_cuda(void);
/* Build configuration of libtorch (BLAS, OpenMP, ...). Free with hc_free. */
HC_API char *hc_config(void);

/* CUDA (cpp/cuda.cpp). Without WITH_CUDA: available=0, count=0, memory 0, the rest errors. */
HC_API int hc_cuda_is_available(void);
HC_API int hc_cuda_device_count(void);
HC_API hc_err hc_cuda_synchronize(int device);
HC_API hc_err hc_cuda_memory(int device, int64_t *allocated, int64_t *reserved);
HC_API hc_err hc_cuda_event_new(hc_event *out);
HC_API hc_err hc_cuda_event_record(hc_event e, int device); /* on the device's current stream */
HC_API hc_err hc_cuda_event_query(hc_event e, int *done);
HC_API hc_err hc_cuda_event_elapsed_ms(hc_event start, hc_event end, float *ms);
HC_API void hc_cuda_event_free(hc_event e);

#ifdef __cplusplus
}
#endif
#endif
