package trainer

import (
	"math"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
)

type modelT = onnxio.Model

var newIndex = onnxio.NewIndex

// TestInitializeScratch checks PyTorch's default rules on the small CNN:
// conv1.weight [16,1,3,3] has fan_in 9, so U(±1/3), whose variance is 1/27;
// fc.weight [10, 6272] (transB) has fan_in 6272; BN scale 1, shift 0,
// running mean 0, variance 1.
func TestInitializeScratch(t *testing.T) {
	m := loadFixture(t, "small_cnn.preserve.onnx")
	a, rep, err := Initialize(m, 42)
	if err != nil {
		t.Fatal(err)
	}
	get := func(mm any, name string) []float32 {
		t.Helper()
		model := a
		if mm != nil {
			model = mm.(*modelT)
		}
		ix, _ := newIndex(model)
		v, err := model.Floats(ix.Initializers[name])
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for name, fanIn := range map[string]float64{"conv1.weight": 9, "conv1.bias": 9, "conv2.weight": 144, "fc.weight": 6272, "fc.bias": 6272} {
		v := get(nil, name)
		bound := 1 / math.Sqrt(fanIn)
		mean, sq := 0.0, 0.0
		for _, x := range v {
			if math.Abs(float64(x)) > bound {
				t.Fatalf("%s: %v outside ±%v", name, x, bound)
			}
			mean += float64(x)
			sq += float64(x) * float64(x)
		}
		n := float64(len(v))
		variance := sq/n - (mean/n)*(mean/n)
		want := bound * bound / 3
		// the sample variance of n uniform draws has relative sd ≈ √(0.8/n)
		if n >= 100 && math.Abs(variance-want)/want > 5*math.Sqrt(0.8/n) {
			t.Errorf("%s: variance %.4g, want %.4g", name, variance, want)
		}
	}
	for name, want := range map[string]float32{"bn1.weight": 1, "bn1.bias": 0, "bn1.running_mean": 0, "bn1.running_var": 1, "bn2.weight": 1} {
		for _, x := range get(nil, name) {
			if x != want {
				t.Fatalf("%s = %v, want %v", name, x, want)
			}
		}
	}
	if rep.Rules["conv1.weight"] != "kaiming_uniform(a=√5)" || rep.Rules["bn1.weight"] != "ones" {
		t.Fatalf("report: %v", rep.Rules)
	}
	// Same seed, same weights; another seed, other weights; input untouched.
	b, _, _ := Initialize(m, 42)
	c, _, _ := Initialize(m, 43)
	wa, wb, wc := get(nil, "conv2.weight"), get(b, "conv2.weight"), get(c, "conv2.weight")
	orig := get(m, "conv2.weight")
	same, diff, kept := true, false, true
	for i := range wa {
		same = same && wa[i] == wb[i]
		diff = diff || wa[i] != wc[i]
		kept = kept && orig[i] != wa[i]
	}
	if !same || !diff || !kept {
		t.Fatalf("same seed equal %v, other seed differs %v, input untouched %v", same, diff, kept)
	}
}
