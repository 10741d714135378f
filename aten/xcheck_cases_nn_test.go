package aten_test

import (
	"fmt"
	"strings"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// conv is a case with input x, weight w and bias b, all differentiated.
func conv(name, py string, x, w, b *bridge.Tensor, f func(x, w, b *bridge.Tensor) *bridge.Tensor) xcase {
	in, grad := M{"x": x, "w": w}, []string{"x", "w"}
	if b != nil {
		in["b"], grad = b, append(grad, "b")
	}
	return xcase{name: name, in: in, grad: grad, py: py, run: func(v M) L { return L{f(v["x"], v["w"], v["b"])} }}
}

func casesConvPool() []xcase {
	img := func() *bridge.Tensor { return rn(2, 3, 7, 8) }
	return []xcase{
		conv("conv1d_groups", "F.conv1d(x, w, b, 2, 1, 1, 2)", rn(2, 4, 9), rn(6, 2, 3), rn(6),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.Conv1d(x, w, b, []int64{2}, []int64{1}, []int64{1}, 2)
			}),
		conv("conv2d", "F.conv2d(x, w, b, (2, 1), (1, 2), (1, 2))", rn(2, 4, 7, 8), rn(6, 4, 3, 3), rn(6),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.Conv2d(x, w, b, []int64{2, 1}, []int64{1, 2}, []int64{1, 2}, 1)
			}),
		conv("conv2d_no_bias_scalar_lists", "F.conv2d(x, w, None, 2, 1)", rn(1, 3, 6, 6), rn(4, 3, 3, 3), nil,
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.Conv2d(x, w, b, []int64{2}, []int64{1}, []int64{1}, 1)
			}),
		conv("conv2d_padding_same", "F.conv2d(x, w, b, padding='same', dilation=2)", rn(1, 2, 7, 6), rn(3, 2, 3, 2), rn(3),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.Conv2dPadding(x, w, b, []int64{1, 1}, "same", []int64{2, 2}, 1)
			}),
		conv("conv3d", "F.conv3d(x, w, b, 1, 1)", rn(1, 2, 5, 6, 5), rn(3, 2, 2, 3, 2), rn(3),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.Conv3d(x, w, b, []int64{1, 1, 1}, []int64{1, 1, 1}, []int64{1, 1, 1}, 1)
			}),
		conv("conv_transpose1d", "F.conv_transpose1d(x, w, b, 2, 1, 1)", rn(2, 3, 5), rn(3, 2, 4), rn(2),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.ConvTranspose1d(x, w, b, []int64{2}, []int64{1}, []int64{1}, 1, []int64{1})
			}),
		conv("conv_transpose2d", "F.conv_transpose2d(x, w, b, 2, 1, (1, 0), 2, 1)", rn(2, 4, 5, 4), rn(4, 3, 3, 3), rn(6),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.ConvTranspose2d(x, w, b, []int64{2, 2}, []int64{1, 1}, []int64{1, 0}, 2, []int64{1, 1})
			}),
		conv("conv_transpose3d", "F.conv_transpose3d(x, w, b, 1, 0, 0, 1, 2)", rn(1, 2, 3, 3, 3), rn(2, 2, 2, 2, 2), rn(2),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.ConvTranspose3d(x, w, b, []int64{1, 1, 1}, []int64{0, 0, 0}, []int64{0, 0, 0}, 1, []int64{2, 2, 2})
			}),
		conv("convolution_transposed", "torch.convolution(x, w, b, [1, 2], [0, 1], [1, 1], True, [0, 1], 1)", rn(1, 3, 4, 4), rn(3, 2, 2, 3), rn(2),
			func(x, w, b *bridge.Tensor) *bridge.Tensor {
				return aten.Convolution(x, w, b, []int64{1, 2}, []int64{0, 1}, []int64{1, 1}, true, []int64{0, 1}, 1)
			}),
		unary("max_pool1d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.MaxPool1d(a, []int64{3}, []int64{2}, []int64{1}, []int64{1}, false)
		}, "F.max_pool1d(x, 3, 2, 1)", rn(2, 3, 9)),
		unary("max_pool2d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.MaxPool2d(a, []int64{3, 2}, []int64{2, 2}, []int64{1, 0}, []int64{1, 1}, true)
		}, "F.max_pool2d(x, (3, 2), (2, 2), (1, 0), ceil_mode=True)", img()),
		unary("max_pool2d_default_stride", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.MaxPool2d(a, []int64{2, 2}, nil, []int64{0}, []int64{1}, false)
		}, "F.max_pool2d(x, 2)", img()),
		{name: "max_pool2d_with_indices", in: M{"x": img()}, grad: []string{"x"}, py: "F.max_pool2d(x, 3, 2, 1, 2, return_indices=True)",
			run: func(v M) L {
				o, i := aten.MaxPool2dWithIndices(v["x"], []int64{3, 3}, []int64{2, 2}, []int64{1, 1}, []int64{2, 2}, false)
				return L{o, i}
			}},
		{name: "max_pool1d_with_indices", in: M{"x": rn(2, 3, 9)}, grad: []string{"x"}, py: "F.max_pool1d(x, 2, return_indices=True)",
			run: func(v M) L {
				o, i := aten.MaxPool1dWithIndices(v["x"], []int64{2}, nil, []int64{0}, []int64{1}, false)
				return L{o, i}
			}},
		unary("max_pool3d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.MaxPool3d(a, []int64{2, 2, 2}, []int64{1, 2, 2}, []int64{0, 1, 0}, []int64{1, 1, 1}, false)
		}, "F.max_pool3d(x, 2, (1, 2, 2), (0, 1, 0))", rn(1, 2, 4, 5, 4)),
		unary("avg_pool1d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.AvgPool1d(a, []int64{3}, []int64{2}, []int64{1}, false, true)
		}, "F.avg_pool1d(x, 3, 2, 1)", rn(2, 3, 9)),
		unary("avg_pool2d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.AvgPool2d(a, []int64{3, 3}, []int64{2, 2}, []int64{1, 1}, true, false, nil)
		}, "F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)", img()),
		unary("avg_pool2d_divisor", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.AvgPool2d(a, []int64{2, 2}, nil, []int64{0, 0}, false, true, aten.I(3))
		}, "F.avg_pool2d(x, 2, divisor_override=3)", img()),
		unary("avg_pool3d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.AvgPool3d(a, []int64{2, 2, 2}, []int64{2, 1, 2}, []int64{0, 0, 0}, false, true, nil)
		}, "F.avg_pool3d(x, 2, (2, 1, 2))", rn(1, 2, 4, 5, 4)),
		unary("adaptive_avg_pool1d", func(a *bridge.Tensor) *bridge.Tensor { return aten.AdaptiveAvgPool1d(a, []int64{4}) }, "F.adaptive_avg_pool1d(x, 4)", rn(2, 3, 9)),
		unary("adaptive_avg_pool2d", func(a *bridge.Tensor) *bridge.Tensor { return aten.AdaptiveAvgPool2d(a, []int64{3, 2}) }, "F.adaptive_avg_pool2d(x, (3, 2))", img()),
		unary("adaptive_avg_pool3d", func(a *bridge.Tensor) *bridge.Tensor { return aten.AdaptiveAvgPool3d(a, []int64{2, 3, 2}) }, "F.adaptive_avg_pool3d(x, (2, 3, 2))", rn(1, 2, 4, 5, 4)),
		{name: "adaptive_max_pool2d", in: M{"x": img()}, grad: []string{"x"}, py: "F.adaptive_max_pool2d(x, 3, return_indices=True)",
			run: func(v M) L { o, i := aten.AdaptiveMaxPool2d(v["x"], []int64{3, 3}); return L{o, i} }},
		{name: "adaptive_max_pool1d", in: M{"x": rn(2, 3, 9)}, grad: []string{"x"}, py: "F.adaptive_max_pool1d(x, 4, return_indices=True)",
			run: func(v M) L { o, i := aten.AdaptiveMaxPool1d(v["x"], []int64{4}); return L{o, i} }},
		{name: "max_unpool2d", in: M{"x": rn(1, 2, 4, 4)}, grad: []string{"x"},
			py: "o, i = F.max_pool2d(x, 2, return_indices=True)\nout = F.max_unpool2d(o, i, 2, output_size=(4, 4))",
			run: func(v M) L {
				o, i := aten.MaxPool2dWithIndices(v["x"], []int64{2, 2}, nil, []int64{0, 0}, []int64{1, 1}, false)
				return L{aten.MaxUnpool2d(o, i, []int64{4, 4})}
			}},
		unary("upsample_nearest2d", func(a *bridge.Tensor) *bridge.Tensor { return aten.UpsampleNearest2d(a, []int64{6, 9}, nil, nil) },
			"F.interpolate(x, size=(6, 9), mode='nearest')", rn(1, 2, 4, 5)),
		unary("upsample_nearest2d_vec", func(a *bridge.Tensor) *bridge.Tensor { return aten.UpsampleNearest2dVec(a, nil, []float64{2, 1.5}) },
			"F.interpolate(x, scale_factor=(2, 1.5), mode='nearest')", rn(1, 2, 4, 5)),
		unary("upsample_bilinear2d_align", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.UpsampleBilinear2d(a, []int64{5, 7}, true, nil, nil)
		},
			"F.interpolate(x, size=(5, 7), mode='bilinear', align_corners=True)", rn(1, 2, 4, 5)),
		unary("upsample_bilinear2d_vec", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.UpsampleBilinear2dVec(a, nil, false, []float64{2, 2})
		},
			"F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)", rn(1, 2, 4, 5)),
		unary("upsample_nearest1d", func(a *bridge.Tensor) *bridge.Tensor { return aten.UpsampleNearest1d(a, []int64{7}, nil) },
			"F.interpolate(x, size=7, mode='nearest')", rn(2, 3, 4)),
		unary("upsample_linear1d", func(a *bridge.Tensor) *bridge.Tensor { return aten.UpsampleLinear1d(a, []int64{7}, false, nil) },
			"F.interpolate(x, size=7, mode='linear')", rn(2, 3, 4)),
		unary("upsample_bicubic2d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.UpsampleBicubic2d(a, []int64{6, 7}, false, nil, nil)
		},
			"F.interpolate(x, size=(6, 7), mode='bicubic')", rn(1, 2, 4, 5)),
		unary("upsample_trilinear3d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.UpsampleTrilinear3d(a, []int64{4, 5, 3}, true, nil, nil, nil)
		},
			"F.interpolate(x, size=(4, 5, 3), mode='trilinear', align_corners=True)", rn(1, 2, 2, 3, 2)),
		unary("upsample_nearest3d", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.UpsampleNearest3d(a, []int64{4, 5, 3}, nil, nil, nil)
		},
			"F.interpolate(x, size=(4, 5, 3), mode='nearest')", rn(1, 2, 2, 3, 2)),
		{name: "grid_sampler", in: M{"x": rn(1, 2, 4, 5), "g": uni(-1.1, 1.1, 1, 3, 3, 2)}, grad: []string{"x", "g"},
			py:  "F.grid_sample(x, g, mode='bilinear', padding_mode='border', align_corners=False)",
			run: func(v M) L { return L{aten.GridSampler(v["x"], v["g"], 0, 1, false)} }},
		{name: "affine_grid_generator", in: M{"t": rn(2, 2, 3)}, grad: []string{"t"}, py: "F.affine_grid(t, (2, 1, 3, 4), align_corners=False)",
			run: func(v M) L { return L{aten.AffineGridGenerator(v["t"], []int64{2, 1, 3, 4}, false)} }},
	}
}

func casesNorm() []xcase {
	x := func() *bridge.Tensor { return rn(4, 3, 5) }
	stats := func() (*bridge.Tensor, *bridge.Tensor) { return rn(3), uni(0.5, 2, 3) }
	rm, rv := stats()
	rm2, rv2 := stats()
	rm3, rv3 := stats()
	return []xcase{
		{name: "layer_norm", in: M{"x": x(), "w": rn(5), "b": rn(5)}, grad: []string{"x", "w", "b"}, py: "F.layer_norm(x, (5,), w, b, 1e-5)",
			run: func(v M) L { return L{aten.LayerNorm(v["x"], []int64{5}, v["w"], v["b"], 1e-5, true)} }},
		{name: "layer_norm_no_affine", in: M{"x": x()}, grad: []string{"x"}, py: "F.layer_norm(x, (3, 5), eps=1e-3)",
			run: func(v M) L { return L{aten.LayerNorm(v["x"], []int64{3, 5}, nil, nil, 1e-3, true)} }},
		{name: "native_layer_norm", in: M{"x": x(), "w": rn(5), "b": rn(5)}, grad: []string{"x", "w", "b"}, py: "torch.native_layer_norm(x, [5], w, b, 1e-5)",
			run: func(v M) L {
				o, m, r := aten.NativeLayerNorm(v["x"], []int64{5}, v["w"], v["b"], 1e-5)
				return L{o, m, r}
			}},
		{name: "group_norm", in: M{"x": rn(2, 6, 3, 3), "w": rn(6), "b": rn(6)}, grad: []string{"x", "w", "b"}, py: "F.group_norm(x, 3, w, b)",
			run: func(v M) L { return L{aten.GroupNorm(v["x"], 3, v["w"], v["b"], 1e-5, true)} }},
		{name: "native_group_norm", in: M{"x": rn(2, 6, 3, 3), "w": rn(6), "b": rn(6)}, grad: []string{"x", "w", "b"}, py: "torch.native_group_norm(x, w, b, 2, 6, 9, 2, 1e-5)",
			run: func(v M) L {
				o, m, r := aten.NativeGroupNorm(v["x"], v["w"], v["b"], 2, 6, 9, 2, 1e-5)
				return L{o, m, r}
			}},
		{name: "batch_norm_eval", in: M{"x": x(), "w": rn(3), "b": rn(3), "rm": rm, "rv": rv}, grad: []string{"x", "w", "b"},
			py: "F.batch_norm(x, rm, rv, w, b, False, 0.1, 1e-5)",
			run: func(v M) L {
				return L{aten.BatchNorm(v["x"], v["w"], v["b"], v["rm"], v["rv"], false, 0.1, 1e-5, true)}
			}},
		// Training mode: the output, and the running statistics it updates in place.
		{name: "batch_norm_train", in: M{"x": x(), "w": rn(3), "b": rn(3), "rm": rm2, "rv": rv2}, grad: []string{"x", "w", "b"},
			py: "out = (F.batch_norm(x, rm, rv, w, b, True, 0.2, 1e-5), rm, rv)",
			run: func(v M) L {
				return L{aten.BatchNorm(v["x"], v["w"], v["b"], v["rm"], v["rv"], true, 0.2, 1e-5, true), v["rm"], v["rv"]}
			}},
		{name: "native_batch_norm_train", in: M{"x": rn(4, 3, 2, 2), "w": rn(3), "b": rn(3), "rm": rm3, "rv": rv3}, grad: []string{"x", "w", "b"},
			py: "out = (torch.native_batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5), rm, rv)",
			run: func(v M) L {
				o, m, s := aten.NativeBatchNorm(v["x"], v["w"], v["b"], v["rm"], v["rv"], true, 0.1, 1e-5)
				return L{o, m, s, v["rm"], v["rv"]}
			}},
		{name: "batch_norm_train_no_stats", in: M{"x": x()}, grad: []string{"x"}, py: "F.batch_norm(x, None, None, training=True)",
			run: func(v M) L { return L{aten.BatchNorm(v["x"], nil, nil, nil, nil, true, 0.1, 1e-5, true)} }},
		{name: "instance_norm", in: M{"x": rn(2, 3, 4, 4), "w": rn(3), "b": rn(3)}, grad: []string{"x", "w", "b"}, py: "F.instance_norm(x, weight=w, bias=b)",
			run: func(v M) L { return L{aten.InstanceNorm(v["x"], v["w"], v["b"], nil, nil, true, 0.1, 1e-5, false)} }},
		{name: "instance_norm_running", in: M{"x": rn(2, 3, 6), "rm": rn(3), "rv": uni(0.5, 2, 3)}, grad: []string{"x"},
			py: "out = (F.instance_norm(x, rm, rv, use_input_stats=True, momentum=0.3), rm, rv)",
			run: func(v M) L {
				return L{aten.InstanceNorm(v["x"], nil, nil, v["rm"], v["rv"], true, 0.3, 1e-5, false), v["rm"], v["rv"]}
			}},
	}
}

// rnnWeights makes the flat weights of an nn.RNN-style module (PyTorch's _flat_weights
// order): per layer and direction w_ih, w_hh, b_ih, b_hh. It returns them by name (w00, w01,
// ...) and the Python list of those names.
func rnnWeights(in M, gates, input, hidden, layers int64, bidir bool) ([]string, string) {
	dirs := int64(1)
	if bidir {
		dirs = 2
	}
	var names []string
	for l := int64(0); l < layers; l++ {
		lin := input
		if l > 0 {
			lin = hidden * dirs
		}
		for d := int64(0); d < dirs; d++ {
			for _, s := range []bridge.Shape{{gates * hidden, lin}, {gates * hidden, hidden}, {gates * hidden}, {gates * hidden}} {
				n := fmt.Sprintf("w%02d", len(names))
				in[n] = bridge.Randn(s).MulScalar(0.4)
				names = append(names, n)
			}
		}
	}
	return names, "[" + strings.Join(names, ", ") + "]"
}

func params(v M, names []string) []*bridge.Tensor {
	out := make([]*bridge.Tensor, len(names))
	for i, n := range names {
		out[i] = v[n]
	}
	return out
}

// rnnCase: an RNN op over input x (and initial states) with explicit weights; PyTorch runs
// the nn module of the same shape with those weights installed (use_weights in xcheck.py), so
// the gradients reach them too.
func rnnCase(name string, in M, names []string, module string, call string, run func(v M, w []*bridge.Tensor) L) xcase {
	grad := append([]string{}, names...)
	for k := range in {
		if !strings.HasPrefix(k, "w") {
			grad = append(grad, k)
		}
	}
	return xcase{name: name, in: in, grad: grad, py: "m = " + module + "\nuse_weights(m, [" + strings.Join(names, ", ") + "])\nout = " + call,
		run: func(v M) L { return run(v, params(v, names)) }}
}

func casesRNN() []xcase {
	lstm := M{"x": rn(2, 5, 3), "h": rn(4, 2, 4), "c": rn(4, 2, 4)}
	lstmW, _ := rnnWeights(lstm, 4, 3, 4, 2, true)
	gru := M{"x": rn(6, 2, 3), "h": rn(1, 2, 5)}
	gruW, _ := rnnWeights(gru, 3, 3, 5, 1, false)
	tanh := M{"x": rn(2, 4, 3), "h": rn(4, 2, 3)}
	tanhW, _ := rnnWeights(tanh, 1, 3, 3, 2, true)
	relu := M{"x": rn(4, 2, 3), "h": rn(2, 2, 4)}
	reluW, _ := rnnWeights(relu, 1, 3, 4, 2, false)
	lstmCell := M{"x": rn(3, 4), "h": rn(3, 5), "c": rn(3, 5)}
	lstmCellW, _ := rnnWeights(lstmCell, 4, 4, 5, 1, false)
	gruCell := M{"x": rn(3, 4), "h": rn(3, 5)}
	gruCellW, _ := rnnWeights(gruCell, 3, 4, 5, 1, false)
	tanhCell := M{"x": rn(3, 4), "h": rn(3, 5)}
	tanhCellW, _ := rnnWeights(tanhCell, 1, 4, 5, 1, false)
	reluCell := M{"x": rn(3, 4), "h": rn(3, 5)}
	reluCellW, _ := rnnWeights(reluCell, 1, 4, 5, 1, false)
	return []xcase{
		rnnCase("lstm_2layer_bidir_batch_first", lstm, lstmW, "nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)", "m(x, (h, c))",
			func(v M, w []*bridge.Tensor) L {
				o, h, c := aten.LstmInput(v["x"], []*bridge.Tensor{v["h"], v["c"]}, w, true, 2, 0, false, true, true)
				return L{o, h, c}
			}),
		rnnCase("gru", gru, gruW, "nn.GRU(3, 5)", "m(x, h)",
			func(v M, w []*bridge.Tensor) L {
				o, h := aten.GruInput(v["x"], v["h"], w, true, 1, 0, false, false, false)
				return L{o, h}
			}),
		rnnCase("rnn_tanh_2layer_bidir_batch_first", tanh, tanhW, "nn.RNN(3, 3, num_layers=2, bidirectional=True, batch_first=True)", "m(x, h)",
			func(v M, w []*bridge.Tensor) L {
				o, h := aten.RnnTanhInput(v["x"], v["h"], w, true, 2, 0, false, true, true)
				return L{o, h}
			}),
		rnnCase("rnn_relu_2layer", relu, reluW, "nn.RNN(3, 4, num_layers=2, nonlinearity='relu')", "m(x, h)",
			func(v M, w []*bridge.Tensor) L {
				o, h := aten.RnnReluInput(v["x"], v["h"], w, true, 2, 0, false, false, false)
				return L{o, h}
			}),
		rnnCase("lstm_cell", lstmCell, lstmCellW, "nn.LSTMCell(4, 5)", "m(x, (h, c))",
			func(v M, w []*bridge.Tensor) L {
				h, c := aten.LstmCell(v["x"], []*bridge.Tensor{v["h"], v["c"]}, w[0], w[1], w[2], w[3])
				return L{h, c}
			}),
		rnnCase("gru_cell", gruCell, gruCellW, "nn.GRUCell(4, 5)", "m(x, h)",
			func(v M, w []*bridge.Tensor) L { return L{aten.GruCell(v["x"], v["h"], w[0], w[1], w[2], w[3])} }),
		rnnCase("rnn_tanh_cell", tanhCell, tanhCellW, "nn.RNNCell(4, 5)", "m(x, h)",
			func(v M, w []*bridge.Tensor) L { return L{aten.RnnTanhCell(v["x"], v["h"], w[0], w[1], w[2], w[3])} }),
		rnnCase("rnn_relu_cell", reluCell, reluCellW, "nn.RNNCell(4, 5, nonlinearity='relu')", "m(x, h)",
			func(v M, w []*bridge.Tensor) L { return L{aten.RnnReluCell(v["x"], v["h"], w[0], w[1], w[2], w[3])} }),
	}
}
