package trainer

// Gradient rules of Gemm and MatMul.

func init() {
	register("Gemm", gradGemm)
	register("MatMul", gradMatMul)
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
