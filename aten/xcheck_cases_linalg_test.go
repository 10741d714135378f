package aten_test

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Linear algebra runs in float64 (defaultTol 1e-10), on well-conditioned inputs.
func casesLinalg() []xcase {
	sq := func() *bridge.Tensor { return rn64(4, 4).Add(bridge.Eye(4, 4, bridge.Float64).MulScalar(3)) }
	pair := func(name, py string, f func(a, b *bridge.Tensor) (*bridge.Tensor, *bridge.Tensor), x *bridge.Tensor) xcase {
		return xcase{name: name, in: M{"x": x}, grad: []string{"x"}, py: py, run: func(v M) L { a, b := f(v["x"], nil); return L{a, b} }}
	}
	return []xcase{
		binary("mm", aten.Mm, "torch.mm(x, y)", rn64(3, 4), rn64(4, 5)),
		binary("mm_float32", aten.Mm, "torch.mm(x, y)", rn(3, 4), rn(4, 5)),
		binary("bmm", aten.Bmm, "torch.bmm(x, y)", rn64(2, 3, 4), rn64(2, 4, 5)),
		binary("matmul_broadcast", aten.Matmul, "torch.matmul(x, y)", rn64(2, 1, 3, 4), rn64(3, 4, 2)),
		binary("matmul_vec", aten.Matmul, "x @ y", rn64(4), rn64(2, 4, 3)),
		binary("linalg_matmul", aten.LinalgMatmul, "torch.linalg.matmul(x, y)", rn64(3, 4), rn64(4)),
		binary("mv", aten.Mv, "torch.mv(x, y)", rn64(3, 4), rn64(4)),
		binary("dot", aten.Dot, "torch.dot(x, y)", rn64(5), rn64(5)),
		binary("vdot", aten.Vdot, "torch.vdot(x, y)", rn64(5), rn64(5)),
		binary("inner", aten.Inner, "torch.inner(x, y)", rn64(2, 4), rn64(3, 4)),
		binary("outer", aten.Outer, "torch.outer(x, y)", rn64(3), rn64(4)),
		binary("ger", aten.Ger, "torch.ger(x, y)", rn64(3), rn64(2)),
		binary("kron", aten.Kron, "torch.kron(x, y)", rn64(2, 3), rn64(2, 2)),
		binary("linalg_cross", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.LinalgCross(a, b, 0) }, "torch.linalg.cross(x, y, dim=0)", rn64(3, 4), rn64(3, 4)),
		binary("cross_dim_none", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.Cross(a, b, nil) }, "torch.cross(x, y)", rn64(2, 3), rn64(2, 3)),
		binary("tensordot", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.Tensordot(a, b, []int64{1, 2}, []int64{0, 1}) },
			"torch.tensordot(x, y, ([1, 2], [0, 1]))", rn64(2, 3, 4), rn64(3, 4, 5)),
		{name: "einsum", in: M{"x": rn64(2, 3, 4), "y": rn64(2, 4, 5)}, grad: []string{"x", "y"}, py: "torch.einsum('bij,bjk->bik', x, y)",
			run: func(v M) L { return L{aten.Einsum("bij,bjk->bik", []*bridge.Tensor{v["x"], v["y"]}, nil)} }},
		{name: "einsum_trace_outer", in: M{"x": rn64(3, 3), "y": rn64(4)}, grad: []string{"x", "y"}, py: "torch.einsum('ii,j->j', x, y)",
			run: func(v M) L { return L{aten.Einsum("ii,j->j", []*bridge.Tensor{v["x"], v["y"]}, nil)} }},
		{name: "linalg_multi_dot", in: M{"a": rn64(2, 3), "b": rn64(3, 4), "c": rn64(4, 2)}, grad: []string{"a", "b", "c"}, py: "torch.linalg.multi_dot([a, b, c])",
			run: func(v M) L { return L{aten.LinalgMultiDot([]*bridge.Tensor{v["a"], v["b"], v["c"]})} }},
		{name: "addmm", in: M{"x": rn64(3, 5), "a": rn64(3, 4), "b": rn64(4, 5)}, grad: []string{"x", "a", "b"}, py: "torch.addmm(x, a, b, beta=0.5, alpha=2)",
			run: func(v M) L { return L{aten.Addmm(v["x"], v["a"], v["b"], fs(0.5), is(2))} }},
		{name: "addmv", in: M{"x": rn64(3), "a": rn64(3, 4), "b": rn64(4)}, grad: []string{"x", "a", "b"}, py: "torch.addmv(x, a, b, alpha=-1)",
			run: func(v M) L { return L{aten.Addmv(v["x"], v["a"], v["b"], is(1), is(-1))} }},
		{name: "addbmm", in: M{"x": rn64(3, 5), "a": rn64(2, 3, 4), "b": rn64(2, 4, 5)}, grad: []string{"x", "a", "b"}, py: "torch.addbmm(x, a, b)",
			run: func(v M) L { return L{aten.Addbmm(v["x"], v["a"], v["b"], is(1), is(1))} }},
		{name: "baddbmm", in: M{"x": rn64(2, 3, 5), "a": rn64(2, 3, 4), "b": rn64(2, 4, 5)}, grad: []string{"x", "a", "b"}, py: "torch.baddbmm(x, a, b, beta=2)",
			run: func(v M) L { return L{aten.Baddbmm(v["x"], v["a"], v["b"], is(2), is(1))} }},
		{name: "addr", in: M{"x": rn64(3, 2), "a": rn64(3), "b": rn64(2)}, grad: []string{"x", "a", "b"}, py: "torch.addr(x, a, b, alpha=3)",
			run: func(v M) L { return L{aten.Addr(v["x"], v["a"], v["b"], is(1), is(3))} }},
		binary("linalg_solve", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.LinalgSolve(a, b, true) }, "torch.linalg.solve(x, y)", sq(), rn64(4, 2)),
		binary("linalg_solve_right", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.LinalgSolve(a, b, false) }, "torch.linalg.solve(x, y, left=False)", sq(), rn64(2, 4)),
		{name: "linalg_solve_ex", in: M{"x": sq(), "y": rn64(4)}, py: "torch.linalg.solve_ex(x, y)",
			run: func(v M) L { a, b := aten.LinalgSolveEx(v["x"], v["y"], true, false); return L{a, b} }},
		unary("linalg_inv", aten.LinalgInv, "torch.linalg.inv(x)", sq()),
		unary("inverse", aten.Inverse, "torch.inverse(x)", sq()),
		{name: "linalg_inv_ex", in: M{"x": sq()}, py: "torch.linalg.inv_ex(x)", run: func(v M) L { a, b := aten.LinalgInvEx(v["x"], false); return L{a, b} }},
		unary("linalg_det", aten.LinalgDet, "torch.linalg.det(x)", sq()),
		unary("det_batched", aten.Det, "torch.det(x)", rn64(2, 3, 3)),
		pair("linalg_slogdet", "torch.linalg.slogdet(x)", func(a, _ *bridge.Tensor) (*bridge.Tensor, *bridge.Tensor) { return aten.LinalgSlogdet(a) }, rn64(4, 4)),
		pair("slogdet", "torch.slogdet(x)", func(a, _ *bridge.Tensor) (*bridge.Tensor, *bridge.Tensor) { return aten.Slogdet(a) }, rn64(2, 3, 3)),
		unary("logdet", aten.Logdet, "torch.logdet(x)", spd(4)),
		unary("cholesky", func(a *bridge.Tensor) *bridge.Tensor { return aten.Cholesky(a, false) }, "torch.cholesky(x)", spd(4)),
		unary("linalg_cholesky_upper", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgCholesky(a, true) }, "torch.linalg.cholesky(x, upper=True)", spd(3, 2)),
		{name: "linalg_cholesky_ex", in: M{"x": spd(4)}, py: "torch.linalg.cholesky_ex(x)", run: func(v M) L { a, b := aten.LinalgCholeskyEx(v["x"], false, false); return L{a, b} }},
		{name: "cholesky_solve", in: M{"b": rn64(4, 2), "l": aten.LinalgCholesky(spd(4), false)}, grad: []string{"b", "l"}, py: "torch.cholesky_solve(b, l)",
			run: func(v M) L { return L{aten.CholeskySolve(v["b"], v["l"], false)} }},
		{name: "cholesky_inverse", in: M{"l": aten.LinalgCholesky(spd(4), false)}, grad: []string{"l"}, py: "torch.cholesky_inverse(l)",
			run: func(v M) L { return L{aten.CholeskyInverse(v["l"], false)} }},
		pair("linalg_qr", "torch.linalg.qr(x)", func(a, _ *bridge.Tensor) (*bridge.Tensor, *bridge.Tensor) { return aten.LinalgQr(a, "reduced") }, rn64(5, 3)),
		pair("linalg_qr_complete", "torch.linalg.qr(x, mode='complete')", func(a, _ *bridge.Tensor) (*bridge.Tensor, *bridge.Tensor) { return aten.LinalgQr(a, "complete") }, rn64(3, 3)),
		pair("qr", "torch.qr(x)", func(a, _ *bridge.Tensor) (*bridge.Tensor, *bridge.Tensor) { return aten.Qr(a, true) }, rn64(4, 3)),
		{name: "geqrf", in: M{"x": rn64(4, 3)}, py: "torch.geqrf(x)", run: func(v M) L { a, b := aten.Geqrf(v["x"]); return L{a, b} }},
		{name: "linalg_householder_product", in: M{"x": rn64(4, 3), "t": rn64(2)}, grad: []string{"x", "t"}, py: "torch.linalg.householder_product(x, t)",
			run: func(v M) L { return L{aten.LinalgHouseholderProduct(v["x"], v["t"])} }},
		{name: "svd", in: M{"x": rn64(4, 3)}, grad: []string{"x"}, py: "torch.svd(x)",
			run: func(v M) L { u, s, w := aten.Svd(v["x"], true, true); return L{u, s, w} }},
		{name: "linalg_svd", in: M{"x": rn64(3, 5)}, grad: []string{"x"}, py: "torch.linalg.svd(x, full_matrices=False)",
			run: func(v M) L { u, s, vh := aten.LinalgSvd(v["x"], false, nil); return L{u, s, vh} }},
		// U diag(S) Vh with full_matrices, besides the factors themselves above.
		{name: "linalg_svd_reconstruct", in: M{"x": rn64(2, 4, 3)}, grad: []string{"x"}, py: "u, s, vh = torch.linalg.svd(x)\nout = (u[..., :3] * s.unsqueeze(-2)) @ vh",
			run: func(v M) L {
				u, s, vh := aten.LinalgSvd(v["x"], true, nil)
				return L{aten.Matmul(aten.Mul(aten.Narrow(u, -1, 0, 3), aten.Unsqueeze(s, -2)), vh)}
			}},
		unary("linalg_svdvals", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgSvdvals(a, nil) }, "torch.linalg.svdvals(x)", rn64(5, 4)),
		{name: "linalg_eigh", in: M{"x": spd(4)}, grad: []string{"x"}, py: "torch.linalg.eigh(x)",
			run: func(v M) L { a, b := aten.LinalgEigh(v["x"], "L"); return L{a, b} }},
		unary("linalg_eigvalsh_upper", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgEigvalsh(a, "U") }, "torch.linalg.eigvalsh(x, UPLO='U')", rn64(4, 4)),
		unaryNG("linalg_eigvals_complex", func(a *bridge.Tensor) *bridge.Tensor { return aten.ViewAsReal(aten.LinalgEigvals(a)) },
			"torch.view_as_real(torch.linalg.eigvals(x))", rn64(4, 4)),
		unary("linalg_pinv", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgPinv(a, 1e-15, false) }, "torch.linalg.pinv(x, rcond=1e-15)", rn64(5, 3)),
		unary("linalg_pinv_atol_rtol", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.LinalgPinvAtolRtolFloat(a, nil, aten.F(1e-12), false)
		},
			"torch.linalg.pinv(x, rtol=1e-12)", rn64(3, 4)),
		unary("pinverse", func(a *bridge.Tensor) *bridge.Tensor { return aten.Pinverse(a, 1e-15) }, "torch.pinverse(x)", rn64(3, 5)),
		unary("linalg_matrix_power", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgMatrixPower(a, -2) }, "torch.linalg.matrix_power(x, -2)", sq()),
		unary("matrix_power", func(a *bridge.Tensor) *bridge.Tensor { return aten.MatrixPower(a, 3) }, "torch.matrix_power(x, 3)", rn64(3, 3)),
		unary("matrix_exp", aten.MatrixExp, "torch.matrix_exp(x)", rn64(3, 3).MulScalar(0.5)),
		{name: "triangular_solve", in: M{"b": rn64(4, 2), "a": aten.Triu(sq(), 0)}, grad: []string{"b", "a"}, py: "torch.triangular_solve(b, a)",
			run: func(v M) L { s, c := aten.TriangularSolve(v["b"], v["a"], true, false, false); return L{s, c} }},
		{name: "linalg_solve_triangular", in: M{"a": aten.Tril(sq(), 0), "b": rn64(4, 3)}, grad: []string{"a", "b"},
			py:  "torch.linalg.solve_triangular(a, b, upper=False)",
			run: func(v M) L { return L{aten.LinalgSolveTriangular(v["a"], v["b"], false, true, false)} }},
		{name: "linalg_lu_factor", in: M{"x": rn64(4, 4)}, grad: []string{"x"}, py: "torch.linalg.lu_factor(x)",
			run: func(v M) L { a, b := aten.LinalgLuFactor(v["x"], true); return L{a, b} }},
		{name: "linalg_lu", in: M{"x": rn64(4, 3)}, grad: []string{"x"}, py: "torch.linalg.lu(x)",
			run: func(v M) L { p, l, u := aten.LinalgLu(v["x"], true); return L{p, l, u} }},
		{name: "linalg_lstsq", in: M{"a": rn64(5, 3), "b": rn64(5, 2)}, py: "torch.linalg.lstsq(a, b, driver='gelsd')",
			run: func(v M) L {
				s, r, k, sv := aten.LinalgLstsq(v["a"], v["b"], nil, aten.Str("gelsd"))
				return L{s, r, k, sv}
			}},
		unaryNG("linalg_matrix_rank", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgMatrixRankAtolRtolFloat(a, nil, nil, false) },
			"torch.linalg.matrix_rank(x)", rn64(4, 2).MatMul(rn64(2, 5))),
		unary("linalg_cond", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgCond(a, nil) }, "torch.linalg.cond(x)", sq()),
		unary("linalg_matrix_norm_fro", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.LinalgMatrixNorm(a, fs(1), []int64{-2, -1}, false, nil)
		},
			"torch.linalg.matrix_norm(x, 1)", rn64(2, 3, 4)),
		unary("linalg_norm_default", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgNorm(a, nil, nil, false, nil) }, "torch.linalg.norm(x)", rn64(3, 4)),
		unary("nuclear_norm", func(a *bridge.Tensor) *bridge.Tensor { return aten.NuclearNorm(a, false) }, "torch.nuclear_norm(x)", rn64(3, 4)),
		unary("frobenius_norm", aten.FrobeniusNorm, "torch.norm(x, 'fro')", rn64(3, 4)),
		unary("linalg_vander", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgVander(a, aten.I(4)) }, "torch.linalg.vander(x, N=4)", rn64(3)),
		unary("linalg_tensorinv", func(a *bridge.Tensor) *bridge.Tensor { return aten.LinalgTensorinv(a, 1) }, "torch.linalg.tensorinv(x, 1)", sq().Reshape(4, 2, 2)),
		{name: "linear", in: M{"x": rn(2, 3, 4), "w": rn(5, 4), "b": rn(5)}, grad: []string{"x", "w", "b"}, py: "F.linear(x, w, b)",
			run: func(v M) L { return L{aten.Linear(v["x"], v["w"], v["b"])} }},
		{name: "linear_no_bias", in: M{"x": rn(2, 4), "w": rn(5, 4)}, grad: []string{"x", "w"}, py: "F.linear(x, w)",
			run: func(v M) L { return L{aten.Linear(v["x"], v["w"], nil)} }},
		{name: "bilinear", in: M{"x": rn(2, 3), "y": rn(2, 4), "w": rn(5, 3, 4), "b": rn(5)}, grad: []string{"x", "y", "w", "b"}, py: "F.bilinear(x, y, w, b)",
			run: func(v M) L { return L{aten.Bilinear(v["x"], v["y"], v["w"], v["b"])} }},
	}
}
