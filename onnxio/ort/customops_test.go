package ort

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// ortHeaderDir is the directory of the onnxruntime_c_api.h onnxruntime_go
// ships, or the test is skipped.
func ortHeaderDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("cannot locate onnxruntime_go's header: %v", err)
	}
	return dir
}

// dnnlLibrary returns the library BNAUDIT_DNNL resolves to, or builds trainer/dnnl/bnaudit_dnnl.c
// (needs gcc and oneDNN's headers) into a temporary directory, or skips.
func dnnlLibrary(t *testing.T) string {
	t.Helper()
	// the library the trainer would use; else a build of our own
	if lib, _ := ResolveDNNL(os.Getenv(DNNLEnv)); lib != "" {
		return lib
	}
	lib := filepath.Join(t.TempDir(), "libbnaudit_dnnl.so")
	cmd := exec.Command("gcc", "-O2", "-shared", "-fPIC", "-fopenmp", "-o", lib, "../../trainer/dnnl/bnaudit_dnnl.c", "-ldnnl", "-I"+ortHeaderDir(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("no oneDNN custom-op library is installed and the oneDNN custom-op library does not build here (needs gcc and libdnnl-dev): %v: %s", err, firstLine(string(out)))
	}
	return lib
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// TestOrtAPIPositions checks the OrtApi positions customops.go calls
// through against the header onnxruntime_go is built with.
func TestOrtAPIPositions(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "pos.c")
	prog := `#include <stdio.h>
#include <stddef.h>
#include "onnxruntime_c_api.h"
#define AT(f) (offsetof(OrtApi, f) / sizeof(void *))
int main(void) { printf("%d %zu %zu %zu", ORT_API_VERSION, AT(GetErrorMessage), AT(ReleaseStatus), AT(RegisterCustomOpsLibrary_V2)); return 0; }
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pos")
	if out, err := exec.Command("gcc", "-I"+ortHeaderDir(t), "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("gcc cannot compile against ORT's header: %v: %s", err, firstLine(string(out)))
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(ortAPIVersion, " ", ortErrorMessage, " ", ortReleaseStatus, " ", ortRegisterCustomV2)
	if string(out) != want {
		t.Fatalf("header says version, GetErrorMessage, ReleaseStatus, RegisterCustomOpsLibrary_V2 = %s; customops.go has %s", out, want)
	}
}

func TestCustomOpsLibraryMissing(t *testing.T) {
	requireORT(t)
	_, err := NewSessionAuto(addModel(dims(2)), SessionOptions{CustomOpsLibrary: filepath.Join(t.TempDir(), "nope.so")})
	if err == nil || !strings.Contains(err.Error(), "register custom ops") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a one-line registration error, got %v", err)
	}
}

type convCase struct {
	n, c, h, w, o, kh, kw, sh, sw int64
	pads                          [4]int64 // top, left, bottom, right
}

func (k convCase) out() (int64, int64) {
	return (k.h+k.pads[0]+k.pads[2]-k.kh)/k.sh + 1, (k.w+k.pads[1]+k.pads[3]-k.kw)/k.sw + 1
}

// blockNCHW reorders a plain [N, C, H, W] tensor to [N, C/B, H, W, B].
func blockNCHW[T float32 | float64](x []T, n, c, h, w, b int64) []T {
	out := make([]T, len(x))
	for i := int64(0); i < n; i++ {
		for ch := int64(0); ch < c; ch++ {
			for p := int64(0); p < h*w; p++ {
				out[((i*(c/b)+ch/b)*h*w+p)*b+ch%b] = x[(i*c+ch)*h*w+p]
			}
		}
	}
	return out
}

// weightGradDefinition is dW[o, c, i, j] = Σ dY[n, o, y, x]·X[n, c, y·sh+i−pt, x·sw+j−pl]
// in float64 on plain tensors.
func weightGradDefinition(k convCase, x, dy []float32) []float64 {
	ho, wo := k.out()
	dw := make([]float64, k.o*k.c*k.kh*k.kw)
	for o := int64(0); o < k.o; o++ {
		for c := int64(0); c < k.c; c++ {
			for i := int64(0); i < k.kh; i++ {
				for j := int64(0); j < k.kw; j++ {
					s := 0.0
					for n := int64(0); n < k.n; n++ {
						for yy := int64(0); yy < ho; yy++ {
							r := yy*k.sh + i - k.pads[0]
							if r < 0 || r >= k.h {
								continue
							}
							for xx := int64(0); xx < wo; xx++ {
								q := xx*k.sw + j - k.pads[1]
								if q < 0 || q >= k.w {
									continue
								}
								s += float64(dy[((n*k.o+o)*ho+yy)*wo+xx]) * float64(x[((n*k.c+c)*k.h+r)*k.w+q])
							}
						}
					}
					dw[((o*k.c+c)*k.kh+i)*k.kw+j] = s
				}
			}
		}
	}
	return dw
}

// dataGradDefinition is dX[n, c, y·sh+i−pt, x·sw+j−pl] += dY[n, o, y, x]·W[o, c, i, j]
// in float64 on plain tensors.
func dataGradDefinition(k convCase, dy, w []float32) []float64 {
	ho, wo := k.out()
	dx := make([]float64, k.n*k.c*k.h*k.w)
	for n := int64(0); n < k.n; n++ {
		for o := int64(0); o < k.o; o++ {
			for yy := int64(0); yy < ho; yy++ {
				for xx := int64(0); xx < wo; xx++ {
					g := float64(dy[((n*k.o+o)*ho+yy)*wo+xx])
					for c := int64(0); c < k.c; c++ {
						for i := int64(0); i < k.kh; i++ {
							r := yy*k.sh + i - k.pads[0]
							if r < 0 || r >= k.h {
								continue
							}
							for j := int64(0); j < k.kw; j++ {
								q := xx*k.sw + j - k.pads[1]
								if q < 0 || q >= k.w {
									continue
								}
								dx[((n*k.c+c)*k.h+r)*k.w+q] += g * float64(w[((o*k.c+c)*k.kh+i)*k.kw+j])
							}
						}
					}
				}
			}
		}
	}
	return dx
}

// floatInfo is a float tensor's value info.
func floatInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	sh := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: onnxio.TypeFloat, Shape: sh}}}}
}

// gradModel is a model of one node: ConvWeightGradBlocked (x, dy → dw) or
// ConvDataGradBlocked (dy, w → dx) for the case k and block b.
func gradModel(t *testing.T, op string, k convCase, b int64) []byte {
	ho, wo := k.out()
	vi := floatInfo
	ints := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, Ints: v, Type: onnxpb.AttributeProto_INTS}
	}
	x, dy, w := vi("x", k.n, k.c/b, k.h, k.w, b), vi("dy", k.n, k.o/b, ho, wo, b), vi("w", k.o, k.c, k.kh, k.kw)
	attrs := []*onnxpb.AttributeProto{ints("kernel_shape", k.kh, k.kw), ints("strides", k.sh, k.sw), ints("pads", k.pads[:]...)}
	ins, out := []*onnxpb.ValueInfoProto{x, dy}, vi("dw", k.o, k.c, k.kh, k.kw)
	if op == "ConvDataGradBlocked" {
		ins, out = []*onnxpb.ValueInfoProto{dy, w}, vi("dx", k.n, k.c/b, k.h, k.w, b)
		attrs = append(attrs, ints("input_hw", k.h, k.w))
	}
	mp := &onnxpb.ModelProto{IrVersion: 7, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}, {Domain: "bnaudit.dnnl", Version: 1}}, Graph: &onnxpb.GraphProto{
		Name: op, Input: ins, Output: []*onnxpb.ValueInfoProto{out},
		Node: []*onnxpb.NodeProto{{Name: op, OpType: op, Domain: "bnaudit.dnnl", Input: []string{ins[0].GetName(), ins[1].GetName()}, Output: []string{out.GetName()}, Attribute: attrs}},
	}}
	raw, err := (&onnxio.Model{Proto: mp}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestConvGradsBlockedMatchDefinition runs the oneDNN custom ops
// (ConvWeightGradBlocked, ConvDataGradBlocked) on blocked operands and
// compares with the float64 definitions on the plain ones, for both blocks
// oneDNN and ORT use.
func TestConvGradsBlockedMatchDefinition(t *testing.T) {
	requireORT(t)
	lib := dnnlLibrary(t)
	cases := []convCase{
		{n: 2, c: 16, h: 7, w: 6, o: 32, kh: 3, kw: 3, sh: 1, sw: 1, pads: [4]int64{1, 1, 1, 1}},
		{n: 3, c: 32, h: 8, w: 8, o: 16, kh: 1, kw: 1, sh: 2, sw: 2},
		{n: 2, c: 16, h: 9, w: 9, o: 16, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int64{1, 1, 1, 1}},
		{n: 2, c: 16, h: 8, w: 8, o: 32, kh: 3, kw: 3, sh: 2, sw: 2, pads: [4]int64{1, 1, 1, 1}},
		{n: 2, c: 16, h: 6, w: 7, o: 16, kh: 3, kw: 3, sh: 1, sw: 1},
		{n: 1, c: 16, h: 5, w: 6, o: 16, kh: 3, kw: 3, sh: 1, sw: 2, pads: [4]int64{1, 0, 0, 1}},
	}
	rng := rand.New(rand.NewSource(7))
	normal := func(n int64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, op := range []string{"ConvWeightGradBlocked", "ConvDataGradBlocked"} {
		for _, b := range []int64{8, 16} {
			for _, k := range cases {
				t.Run(fmt.Sprintf("%s/B%d/%dx%d/c%d-o%d/s%d,%d/p%v", op, b, k.kh, k.kw, k.c, k.o, k.sh, k.sw, k.pads), func(t *testing.T) {
					ho, wo := k.out()
					x, dy, w := normal(k.n*k.c*k.h*k.w), normal(k.n*k.o*ho*wo), normal(k.o*k.c*k.kh*k.kw)
					s, err := NewSessionAuto(gradModel(t, op, k, b), SessionOptions{Threads: 2, CustomOpsLibrary: lib})
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					in := map[string]*Tensor{"dy": Float32Tensor([]int64{k.n, k.o / b, ho, wo, b}, blockNCHW(dy, k.n, k.o, ho, wo, b))}
					name, shape, want := "dw", []int64{k.o, k.c, k.kh, k.kw}, []float64(nil)
					if op == "ConvDataGradBlocked" {
						in["w"] = Float32Tensor([]int64{k.o, k.c, k.kh, k.kw}, w)
						name, shape = "dx", []int64{k.n, k.c / b, k.h, k.w, b}
						want = blockNCHW(dataGradDefinition(k, dy, w), k.n, k.c, k.h, k.w, b)
					} else {
						in["x"] = Float32Tensor([]int64{k.n, k.c / b, k.h, k.w, b}, blockNCHW(x, k.n, k.c, k.h, k.w, b))
						want = weightGradDefinition(k, x, dy)
					}
					out, err := s.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					got := out[name]
					if fmt.Sprint(got.Shape) != fmt.Sprint(shape) {
						t.Fatalf("%s shape %v, want %v", name, got.Shape, shape)
					}
					if d := relDiff(got.Float32, want); d > 1e-5 || math.IsNaN(d) {
						t.Fatalf("%s differs from its definition by %.3g of its scale", name, d)
					}
				})
			}
		}
	}
}

// TestBatchNormGradBlockedMatchesDefinition runs BatchNormGradBlocked on
// blocked operands and compares with BatchNorm's backward in float64 on the
// plain ones: with inv = 1/√(var + ε), x̂ = Xc·inv and M = N·H·W,
// dβ = Σ dY, dγ = Σ dY·x̂, dX = γ·inv·(dY − dβ/M − x̂·dγ/M).
func TestBatchNormGradBlockedMatchesDefinition(t *testing.T) {
	requireORT(t)
	lib := dnnlLibrary(t)
	rng := rand.New(rand.NewSource(11))
	normal := func(n int64, scale, shift float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64()*scale + shift)
		}
		return v
	}
	const eps = 1e-3
	for _, b := range []int64{8, 16} {
		for _, sh := range [][4]int64{{4, 16, 5, 6}, {2, 32, 7, 7}, {3, 16, 1, 1}} {
			n, c, h, w := sh[0], sh[1], sh[2], sh[3]
			t.Run(fmt.Sprintf("B%d/%v", b, sh), func(t *testing.T) {
				xc, dy := normal(n*c*h*w, 1.5, 0.2), normal(n*c*h*w, 1, 0.1)
				vr, g := normal(c, 0.3, 1), normal(c, 1, 0)
				for i := range vr {
					vr[i] = float32(math.Abs(float64(vr[i])))
				}
				m := float64(n * h * w)
				dx, dg, db := make([]float64, len(xc)), make([]float64, c), make([]float64, c)
				at := func(i, ch, p int64) int64 { return (i*c+ch)*h*w + p }
				for ch := int64(0); ch < c; ch++ {
					inv := 1 / math.Sqrt(float64(vr[ch])+eps)
					for i := int64(0); i < n; i++ {
						for p := int64(0); p < h*w; p++ {
							db[ch] += float64(dy[at(i, ch, p)])
							dg[ch] += float64(dy[at(i, ch, p)]) * float64(xc[at(i, ch, p)]) * inv
						}
					}
					for i := int64(0); i < n; i++ {
						for p := int64(0); p < h*w; p++ {
							xh := float64(xc[at(i, ch, p)]) * inv
							dx[at(i, ch, p)] = float64(g[ch]) * inv * (float64(dy[at(i, ch, p)]) - db[ch]/m - xh*dg[ch]/m)
						}
					}
				}
				blk := []int64{n, c / b, h, w, b}
				mp := &onnxpb.ModelProto{IrVersion: 7, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}, {Domain: "bnaudit.dnnl", Version: 1}}, Graph: &onnxpb.GraphProto{
					Name:   "bn",
					Input:  []*onnxpb.ValueInfoProto{floatInfo("xc", blk...), floatInfo("dy", blk...), floatInfo("var", c), floatInfo("scale", c)},
					Output: []*onnxpb.ValueInfoProto{floatInfo("dx", blk...), floatInfo("dscale", c), floatInfo("dshift", c)},
					Node: []*onnxpb.NodeProto{{Name: "bn", OpType: "BatchNormGradBlocked", Domain: "bnaudit.dnnl", Input: []string{"xc", "dy", "var", "scale"}, Output: []string{"dx", "dscale", "dshift"},
						Attribute: []*onnxpb.AttributeProto{{Name: "epsilon", F: eps, Type: onnxpb.AttributeProto_FLOAT}, {Name: "threads", I: 1, Type: onnxpb.AttributeProto_INT}}}},
				}}
				raw, err := (&onnxio.Model{Proto: mp}).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				s, err := NewSessionAuto(raw, SessionOptions{Threads: 2, CustomOpsLibrary: lib})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				out, err := s.Run(map[string]*Tensor{
					"xc": Float32Tensor(blk, blockNCHW(xc, n, c, h, w, b)), "dy": Float32Tensor(blk, blockNCHW(dy, n, c, h, w, b)),
					"var": Float32Tensor([]int64{c}, vr), "scale": Float32Tensor([]int64{c}, g),
				})
				if err != nil {
					t.Fatal(err)
				}
				for name, want := range map[string][]float64{"dx": blockNCHW(dx, n, c, h, w, b), "dscale": dg, "dshift": db} {
					if d := relDiff(out[name].Float32, want); d > 1e-5 || math.IsNaN(d) {
						t.Errorf("%s differs from its definition by %.3g of its scale", name, d)
					}
				}
			})
		}
	}
}

// TestCustomOpsSessionsAtOnce creates sessions that register the oneDNN
// library from several goroutines at once, as reference models trained side
// by side do: every one must open. ONNX Runtime enters a custom-op domain
// in a process-wide table at its first registration, and two first
// registrations at the same moment made one fail ("domain is already
// exist") in 3 of 40 processes. The race is once per process, so the test
// runs its body in 30 processes of its own.
func TestCustomOpsSessionsAtOnce(t *testing.T) {
	requireORT(t)
	lib := dnnlLibrary(t)
	if os.Getenv("BNAUDIT_TEST_CHILD") == "sessions-at-once" {
		sessionsAtOnce(t, lib)
		return
	}
	for i := range 30 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestCustomOpsSessionsAtOnce$")
		cmd.Env = append(os.Environ(), "BNAUDIT_TEST_CHILD=sessions-at-once", DNNLEnv+"="+lib)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, out)
		}
	}
}

func sessionsAtOnce(t *testing.T, lib string) {
	k := convCase{n: 1, c: 16, h: 4, w: 4, o: 16, kh: 3, kw: 3, sh: 1, sw: 1, pads: [4]int64{1, 1, 1, 1}}
	model := gradModel(t, "ConvWeightGradBlocked", k, 8)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := NewSessionAuto(model, SessionOptions{Threads: 1, CustomOpsLibrary: lib})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestResolveDNNL: BNAUDIT_DNNL's values, with and without the library
// installed.
func TestResolveDNNL(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	for _, v := range []string{"off", "0", "FALSE", " off "} {
		if p, off := ResolveDNNL(v); p != "" || !off {
			t.Errorf("%q: %q %v, want turned off", v, p, off)
		}
	}
	if p, off := ResolveDNNL("/x/lib.so"); p != "/x/lib.so" || off {
		t.Errorf("a path: %q %v", p, off)
	}
	for _, v := range []string{"", "on", "auto"} {
		if p, off := ResolveDNNL(v); p != "" || off {
			t.Errorf("%q, nothing installed: %q %v, want wanted but absent", v, p, off)
		}
	}
	def := DNNLDefaultPath()
	if err := os.MkdirAll(filepath.Join(def, ".."), 0o755); err != nil {
		t.Fatal(err)
	}
	// a folder where the library should be is not a library
	if err := os.Mkdir(def, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, _ := ResolveDNNL(""); p != "" {
		t.Errorf("a folder at the library's place: %q", p)
	}
	if err := os.Remove(def); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(def, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "on", "1", "true"} {
		if p, off := ResolveDNNL(v); p != def || off {
			t.Errorf("%q, installed: %q %v, want %q", v, p, off, def)
		}
	}
	if p, off := ResolveDNNL("off"); p != "" || !off {
		t.Errorf("off, installed: %q %v", p, off)
	}
}
