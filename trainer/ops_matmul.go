package trainer

import "fmt"

// Matrix products: Gemm and MatMul.

func init() {
	register("Gemm", opInfo{arity: arity{2, 3, 1, 1}, infer: inferGemm, perSample: psGemm, weight: true, grad: gradGemm})
	register("MatMul", opInfo{arity: arBinary, infer: inferMatMul, perSample: psMatMul, weight: true, grad: gradMatMul})
}

// gradGemm: Y = α·op(A)·op(B) + β·C.
//
//	dA = α·dY·op(B)ᵀ (transposed back when transA), dB likewise, dC = β·Σ dY.
func gradGemm(c *gradCtx, dy []string) []string {
	b := c.b
	alpha, beta := c.attrFloat("alpha", 1), c.attrFloat("beta", 1)
	ta, tb := c.attrInt("transA", 0), c.attrInt("transB", 0)
	g := dy[0]
	out := make([]string, len(c.e.inputs))
	if c.want(0) {
		if ta == 0 {
			out[0] = b.op("Gemm", []string{g, c.x(1)}, aFloat("alpha", alpha), aInt("transB", 1-tb))
		} else {
			out[0] = b.op("Gemm", []string{c.x(1), g}, aFloat("alpha", alpha), aInt("transA", tb), aInt("transB", 1))
		}
	}
	if c.want(1) {
		if tb == 0 {
			out[1] = b.op("Gemm", []string{c.x(0), g}, aFloat("alpha", alpha), aInt("transA", 1-ta))
		} else {
			out[1] = b.op("Gemm", []string{g, c.x(0)}, aFloat("alpha", alpha), aInt("transA", 1), aInt("transB", ta))
		}
	}
	if c.hasX(2) && c.want(2) {
		s := b.sumTo(g, c.xShape(2))
		if beta != 1 {
			s = b.op("Mul", []string{s, b.scalar(beta)})
		}
		out[2] = s
	}
	return out
}

// gradMatMul: numpy matmul with batch broadcasting and 1-D operands.
func gradMatMul(c *gradCtx, dy []string) []string {
	b := c.b
	as, bs := c.xShape(0), c.xShape(1)
	a, bb, g := c.x(0), c.x(1), dy[0]
	// Promote 1-D operands to matrices, as matmul does.
	if len(as) == 1 {
		a = b.reshape(a, []int64{1, as[0]})
	}
	if len(bs) == 1 {
		bb = b.reshape(bb, []int64{bs[0], 1})
	}
	as2, bs2 := b.shape(a), b.shape(bb)
	gshape := append(append([]int64{}, mustBroadcast(as2[:len(as2)-2], bs2[:len(bs2)-2])...), as2[len(as2)-2], bs2[len(bs2)-1])
	g = b.reshape(g, gshape)
	out := make([]string, 2)
	if c.want(0) {
		da := b.op("MatMul", []string{g, transposeLast(b, bb)})
		out[0] = b.reshape(b.sumTo(da, as2), as)
	}
	if c.want(1) {
		db := b.op("MatMul", []string{transposeLast(b, a), g})
		out[1] = b.reshape(b.sumTo(db, bs2), bs)
	}
	return out
}

func mustBroadcast(a, b []int64) []int64 {
	s, err := broadcastShape(a, b)
	if err != nil {
		failf("%v", err)
	}
	return s
}

// transposeLast swaps the last two axes.
func transposeLast(b *builder, x string) string {
	r := len(b.shape(x))
	perm := make([]int64, r)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[r-1], perm[r-2] = perm[r-2], perm[r-1]
	return b.op("Transpose", []string{x}, aInts("perm", perm))
}

func inferMatMul(c *inferCtx) ([]*value, error) {
	a := c.in[0]
	b := c.in[1]
	as, bs := a.shape, b.shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("MatMul of a scalar")
	}
	va, vb := len(as) == 1, len(bs) == 1
	if va {
		as = []int64{1, as[0]}
	}
	if vb {
		bs = []int64{bs[0], 1}
	}
	if as[len(as)-1] != bs[len(bs)-2] {
		return nil, fmt.Errorf("MatMul of %v and %v", a.shape, b.shape)
	}
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	shape := append(batch, as[len(as)-2], bs[len(bs)-1])
	if va {
		shape = append(shape[:len(shape)-2], shape[len(shape)-1])
	}
	if vb {
		shape = shape[:len(shape)-1]
	}
	return []*value{{shape: shape, dtype: a.dtype}}, nil
}

func inferGemm(c *inferCtx) ([]*value, error) {
	a := c.in[0]
	b := c.in[1]
	if len(a.shape) != 2 || len(b.shape) != 2 {
		return nil, fmt.Errorf("Gemm of %v and %v", a.shape, b.shape)
	}
	m, k := a.shape[0], a.shape[1]
	if c.attrInt("transA", 0) != 0 {
		m, k = k, m
	}
	k2, n := b.shape[0], b.shape[1]
	if c.attrInt("transB", 0) != 0 {
		k2, n = n, k2
	}
	if k != k2 {
		return nil, fmt.Errorf("Gemm inner dimensions %d and %d differ", k, k2)
	}
	if len(c.in) > 2 && c.in[2] != nil {
		if s, err := broadcastShape([]int64{m, n}, c.in[2].shape); err != nil || !equalShape(s, []int64{m, n}) {
			return nil, fmt.Errorf("Gemm bias of shape %v does not broadcast to [%d %d]", c.in[2].shape, m, n)
		}
	}
	return []*value{{shape: []int64{m, n}, dtype: a.dtype}}, nil
}
