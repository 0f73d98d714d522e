package trainer

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// Convolution gradients by oneDNN (issue 14).
//
// When the custom-op library built from trainer/dnnl/bnaudit_dnnl.c is
// installed (scripts/build-dnnl.sh, run by scripts/setup.sh, writes it to
// DNNLDefaultPath) and BNAUDIT_DNNL does not turn it off (or names another
// build), the CPU sessions that use the NCHWc rewrite
// compute every weight gradient oneDNN can take (dwDNNLEligible) with one
// bnaudit.dnnl::ConvWeightGradBlocked node on the blocked input and output
// gradient, instead of weightGrad's windows and products, and every
// strided convolution's input gradient oneDNN can take (dxDNNLEligible)
// with one bnaudit.dnnl::ConvDataGradBlocked node on the blocked output
// gradient, instead of a plain ConvTranspose, and BatchNorm's backward with
// batch statistics (bnDNNLEligible) with one
// bnaudit.dnnl::BatchNormGradBlocked node; the session registers the
// library. Should ORT refuse it (the library does not load,
// say), the session runs the NCHWc form without it and the trainer says so
// once (Result.Fallbacks); later sessions of the process do not try again.

// DNNLEnv is the variable that chooses the library (ort.DNNLEnv): by
// default the installed one, "off" none, or a path.
const DNNLEnv = ort.DNNLEnv

const dnnlDomain = "bnaudit.dnnl"

// DNNLDefaultPath is where scripts/build-dnnl.sh installs the library.
func DNNLDefaultPath() string { return ort.DNNLDefaultPath() }

var (
	// dnnlSetting reads BNAUDIT_DNNL once; dnnlEnv and dnnlOff are its two
	// halves (variables so that tests can replace them).
	dnnlSetting = sync.OnceValues(func() (string, bool) { return ort.ResolveDNNL(os.Getenv(DNNLEnv)) })
	dnnlEnv     = func() string { p, _ := dnnlSetting(); return p }
	dnnlOff     = func() bool { _, off := dnnlSetting(); return off }
	dnnlFailed  atomic.Bool
	// dnnlAbsentSaid is set once the trainer has said that the library is
	// not installed.
	dnnlAbsentSaid atomic.Bool
)

// dnnlLibrary is the library the trainer's sessions use, or "".
func dnnlLibrary() string {
	if dnnlFailed.Load() {
		return ""
	}
	return dnnlEnv()
}

// dnnlEligible reports whether oneDNN computes a gradient of the
// convolution r from blocked operands: 2-D, one group, no dilation, channel
// counts multiples of the block.
func dnnlEligible(r convGrad, block int64) bool {
	if r.group != 1 || len(r.xs) != 4 || len(r.ws) != 4 || len(r.ys) != 4 || len(r.w.pads) != 4 || len(r.w.strides) != 2 {
		return false
	}
	for _, d := range r.w.dilations {
		if d != 1 {
			return false
		}
	}
	return r.ws[0]%block == 0 && r.ws[1]%block == 0
}

// dwDNNLEligible reports whether oneDNN computes the weight gradient.
func dwDNNLEligible(r dwRecord, block int64) bool { return dnnlEligible(r.convGrad, block) }

// dnnlWeightGrad emits dW = ConvWeightGradBlocked(X, dY) on the blocked
// tensors viewed as [N, C/B, H, W, B] (ORT keeps them 4-D, [N, C, H, W],
// with the blocked memory order; the Reshapes are views).
func (rw *blockRewriter) dnnlWeightGrad(r dwRecord) {
	b := rw.block
	hint := r.out + "/dnnl"
	x5 := rw.node("Reshape", "", hint+"/x5", []string{rw.blocked(r.x), rw.ints(r.xs[0], r.xs[1]/b, r.xs[2], r.xs[3], b)})
	d5 := rw.node("Reshape", "", hint+"/dy5", []string{rw.blocked(r.dy), rw.ints(r.ys[0], r.ys[1]/b, r.ys[2], r.ys[3], b)})
	rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(hint + "/ConvWeightGradBlocked"), OpType: "ConvWeightGradBlocked", Domain: dnnlDomain,
		Input: []string{x5, d5}, Output: []string{r.out}, Attribute: dnnlAttrs(r.convGrad, rw.dnnlThreads)})
	rw.dnnlNodes++
}

// dxRecord is an input gradient (gradConv) and the convolution's weight.
type dxRecord struct {
	convGrad
	wname string
}

// dxDNNLEligible reports whether oneDNN computes the input gradient
// (dnnlEligible), for the strides it is used for (dnnlDataStrides).
func dxDNNLEligible(r dxRecord, block int64) bool {
	if !dnnlEligible(r.convGrad, block) {
		return false
	}
	switch dnnlDataStrides() {
	case "off":
		return false
	case "strided":
		return r.w.strides[0] > 1 || r.w.strides[1] > 1
	}
	return true
}

// dnnlDataStrides is which input gradients oneDNN computes: "strided"
// (the default), "all" or "off" (BNAUDIT_DNNL_DATA, for measuring). With
// ORT's blocked convolution for the stride-1 ones and oneDNN for the
// strided ones (which would otherwise be a plain ConvTranspose), reference
// models train 7% faster than with neither, and oneDNN for all of them is
// no faster than neither (BENCHMARKS.md).
var dnnlDataStrides = sync.OnceValue(func() string {
	switch v := strings.ToLower(os.Getenv("BNAUDIT_DNNL_DATA")); v {
	case "all", "off":
		return v
	}
	return "strided"
})

// dnnlDataGrad emits dX = ConvDataGradBlocked(dY, W) on the blocked output
// gradient, its blocked result reordered out to r.out (blockedLayout keeps
// it blocked for the ops that follow).
func (rw *blockRewriter) dnnlDataGrad(r dxRecord) {
	b := rw.block
	hint := r.out + "/dnnl"
	d5 := rw.node("Reshape", "", hint+"/dy5", []string{rw.blocked(r.dy), rw.ints(r.ys[0], r.ys[1]/b, r.ys[2], r.ys[3], b)})
	attrs := append(dnnlAttrs(r.convGrad, rw.dnnlThreads), aInts("input_hw", r.xs[2:]))
	dx5 := rw.node("ConvDataGradBlocked", dnnlDomain, hint+"/dx5", []string{d5, r.wname}, attrs...)
	dx := rw.node("Reshape", "", hint+"/dx", []string{dx5, rw.ints(r.xs...)})
	rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(hint + "/ReorderOutput"), OpType: "ReorderOutput", Domain: ort.NCHWcDomain,
		Input: []string{dx}, Output: []string{r.out}, Attribute: []*onnxpb.AttributeProto{aInt("channels", r.xs[1])}})
	rw.dnnlNodes++
}

// bnRecord is BatchNorm's backward with batch statistics as gradBNTrain
// emitted it: the centred input, the output gradient, the batch variance,
// the scale and epsilon; its results (dX, or "" when not needed; dγ; dβ);
// the input shape; the output of its first node (where the rewrite puts
// the replacement) and of all of them.
type bnRecord struct {
	xc, dy, variance, scale string
	eps                     float32
	dx, dscale, dshift      string
	xs                      []int64
	first                   string
	nodes                   map[string]bool
}

// bnDNNLEligible reports whether oneDNN computes BatchNorm's backward on
// the blocked operands: a 4-D input with channels a multiple of the block,
// and results that the recorded nodes produce.
func bnDNNLEligible(r bnRecord, block int64) bool {
	if len(r.xs) != 4 || r.xs[1]%block != 0 || !r.nodes[r.first] || !r.nodes[r.dscale] || !r.nodes[r.dshift] {
		return false
	}
	return r.dx == "" || r.nodes[r.dx]
}

// dnnlBN says whether oneDNN computes BatchNorm's backward: on unless
// BNAUDIT_DNNL_BN=off (for measuring).
var dnnlBN = sync.OnceValue(func() bool { return !strings.EqualFold(os.Getenv("BNAUDIT_DNNL_BN"), "off") })

// dnnlBNGrad emits dX, dγ, dβ = BatchNormGradBlocked(Xc, dY, σ², γ) on the
// blocked centred input and output gradient, dX reordered out to r.dx
// (blockedLayout keeps it blocked for the ops that follow).
func (rw *blockRewriter) dnnlBNGrad(r bnRecord) {
	b := rw.block
	hint := r.dshift + "/dnnl"
	v5 := []int64{r.xs[0], r.xs[1] / b, r.xs[2], r.xs[3], b}
	x5 := rw.node("Reshape", "", hint+"/xc5", []string{rw.blocked(r.xc), rw.ints(v5...)})
	d5 := rw.node("Reshape", "", hint+"/dy5", []string{rw.blocked(r.dy), rw.ints(v5...)})
	dx5 := rw.fresh(hint + "/dx5")
	rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(hint + "/BatchNormGradBlocked"), OpType: "BatchNormGradBlocked", Domain: dnnlDomain,
		Input: []string{x5, d5, r.variance, r.scale}, Output: []string{dx5, r.dscale, r.dshift},
		Attribute: dnnlBNAttrs(r.eps, rw.dnnlThreads)})
	rw.dnnlNodes++
	if r.dx != "" {
		dx := rw.node("Reshape", "", hint+"/dx", []string{dx5, rw.ints(r.xs...)})
		rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(hint + "/ReorderOutput"), OpType: "ReorderOutput", Domain: ort.NCHWcDomain,
			Input: []string{dx}, Output: []string{r.dx}, Attribute: []*onnxpb.AttributeProto{aInt("channels", r.xs[1])}})
	}
}

// sessionSetup is the model bnaudit's session runs for g with opts and the
// options to run it with (the oneDNN library registered when the model
// uses it).
func sessionSetup(g *Graph, opts ort.SessionOptions) (*onnxio.Model, ort.SessionOptions) {
	return sessionSetupWith(g, opts, dnnlLibrary())
}

func sessionSetupWith(g *Graph, opts ort.SessionOptions, dnnl string) (*onnxio.Model, ort.SessionOptions) {
	m := sessionModelWith(g, opts, dnnl != "")
	if dnnl != "" && usesDomain(m, dnnlDomain) {
		opts.CustomOpsLibrary = dnnl
	}
	return m, opts
}

func usesDomain(m *onnxio.Model, domain string) bool {
	for _, n := range m.Graph().GetNode() {
		if n.GetDomain() == domain {
			return true
		}
	}
	return false
}

// openSession opens a session for g as bnaudit runs it (sessionSetup),
// falling back to the NCHWc form without oneDNN, and then to g.Model, when
// ONNX Runtime refuses one.
func openSession(g *Graph, opts ort.SessionOptions, batch int) (*session, error) {
	m, o := sessionSetup(g, opts)
	if o.CustomOpsLibrary == "" {
		s, err := openSessionAs(g, m, opts, batch)
		if err == nil && dnnlLibrary() == "" && !dnnlFailed.Load() && !dnnlOff() && wouldUseDNNL(g, opts) && !dnnlAbsentSaid.Swap(true) {
			s.fallback = joinNotes(fmt.Sprintf("the oneDNN backward kernels are not installed (scripts/setup.sh builds them into %s): training runs standard ONNX Runtime graphs, slower (%s=off silences this)", DNNLDefaultPath(), DNNLEnv), s.fallback)
		}
		return s, err
	}
	s, err := openSessionAs(g, m, o, batch)
	if err == nil && s.fallback == "" {
		return s, nil
	}
	reason := fmt.Sprint(err)
	if err == nil {
		reason = s.fallback
		s.close()
	}
	note := ""
	if !dnnlFailed.Swap(true) {
		note = fmt.Sprintf("ONNX Runtime refused the oneDNN backward kernels (%s=%s) for %s at batch %d, which run as ORT graphs instead: %s", DNNLEnv, o.CustomOpsLibrary, g.Model.Name, batch, reason)
	}
	s, err = openSessionAs(g, sessionModelWith(g, opts, false), opts, batch)
	if err != nil {
		return nil, err
	}
	if note != "" {
		s.fallback = joinNotes(note, s.fallback)
	}
	return s, nil
}

func joinNotes(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

// dnnlThreads is the OpenMP team size of every oneDNN weight gradient:
// one, whatever the session's threads. oneDNN splits the sum over the
// batch between its threads, so its result depends on how many there are,
// where ONNX Runtime's kernels give the same bits on any number; on one
// thread a model trains to the same bytes with --threads 1 or 2, locally
// or as a cluster work unit. The speed comes from training models side by
// side (--jobs), one thread each, which is where oneDNN pays
// (BENCHMARKS.md).
const dnnlThreads = 1

// dnnlBNAttrs are a BatchNormGradBlocked node's attributes: epsilon, and
// oneDNN's OpenMP team size when one is set.
func dnnlBNAttrs(eps float32, threads int) []*onnxpb.AttributeProto {
	a := []*onnxpb.AttributeProto{aFloat("epsilon", eps)}
	if threads > 0 {
		a = append(a, aInt("threads", int64(threads)))
	}
	return a
}

// dnnlAttrs are a ConvWeightGradBlocked node's attributes: the
// convolution's, and oneDNN's OpenMP team size when one is set.
func dnnlAttrs(r convGrad, threads int) []*onnxpb.AttributeProto {
	a := []*onnxpb.AttributeProto{aInts("kernel_shape", r.ws[2:]), aInts("strides", r.w.strides), aInts("pads", r.w.pads)}
	if threads > 0 {
		a = append(a, aInt("threads", int64(threads)))
	}
	return a
}

// wouldUseDNNL says whether g's CPU session with opts would compute a
// weight gradient with the oneDNN library if it were installed.
func wouldUseDNNL(g *Graph, opts ort.SessionOptions) bool {
	if d := strings.ToLower(opts.Device); (d != "" && d != "cpu") || opts.NCHWc == ort.NCHWcOff || len(g.convs) == 0 {
		return false
	}
	block := int64(ort.NCHWcBlock())
	if block < 2 {
		return false
	}
	for _, r := range g.dws {
		if dwDNNLEligible(r, block) {
			return true
		}
	}
	return false
}
