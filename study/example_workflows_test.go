package study_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// fashionNorm is the per-channel normalization of Fashion-MNIST (mean and
// standard deviation of the training images); the canaries take it too.
var fashionNorm = dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}

// loadNormalized reads the first n samples (0: all) of a split of an IDX
// folder and gives them the Fashion-MNIST normalization.
func loadNormalized(path, split string, n int) (*dataset.Dataset, error) {
	d, err := dataset.Load(path, dataset.LoadOptions{Split: split, MaxSamples: n})
	if err != nil {
		return nil, err
	}
	return d.WithNorm(fashionNorm)
}

// ordered reports whether an interval holds its estimate.
func ordered(iv audit.Interval) bool { return iv.Lo <= iv.Estimate && iv.Estimate <= iv.Hi }

// ExampleCompare measures what BatchNorm contributes to membership leakage
// and memorization on one model: the small CNN is trained as it is
// ("original", two BN layers) and with its BN layers removed ("remove"),
// from the same starting weights, data order and MNIST canaries (10
// inserted into the training set with random labels, 10 held out), and
// each trained variant is attacked. The report has one row per variant,
// with-BN-minus-without-BN comparisons with 95% intervals, and a verdict in
// words and as a machine-readable code. The scale here (200 members, 200
// non-members, 2 epochs, one seed) only shows the workflow; a real study
// uses thousands of samples and several seeds (Seeds > 1).
func ExampleCompare() {
	if err := ort.Init(""); err != nil { // finds ONNX Runtime (scripts/install-ort.sh)
		fmt.Println(err)
		return
	}
	members, err := loadNormalized("../testdata/fashion-mnist", "train", 200)
	if err != nil {
		fmt.Println(err)
		return
	}
	nonMembers, err := loadNormalized("../testdata/fashion-mnist", "test", 200)
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := loadNormalized("../testdata/mnist-canaries", "train", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Out-of-distribution canaries: MNIST digits with random Fashion-MNIST
	// labels, 10 inserted and 10 held out.
	canaries, err := study.MakeCanaries(src, 10, 10, fashionNorm, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	model, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Compare writes the trained models and per-run records (for Resume)
	// into Dir.
	dir, err := os.MkdirTemp("", "bnaudit-compare-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	session := ort.SessionOptions{Threads: 2}
	report, err := study.Compare(context.Background(), study.CompareConfig{
		Model:      model,
		Variants:   []string{"original", "remove"},
		Members:    members,
		NonMembers: nonMembers,
		Canaries:   canaries,
		Train: trainer.Config{Init: trainer.InitScratch, Epochs: 2, Batch: 64,
			Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02, Schedule: trainer.Cosine, Session: session},
		Seeds:     1,
		Seed:      4,
		Bootstrap: audit.BootstrapOptions{Replicates: 200, Seed: 1},
		Session:   session,
		Dir:       dir,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range report.Variants {
		fmt.Printf("%-8s BatchNorm layers: %d, attacks: %d, intervals hold their estimates: %v\n",
			v.Name, v.BatchNorms, len(v.Attacks), ordered(v.TestAccuracy) && ordered(v.Attacks[0].AUC))
	}
	var metrics []string
	for _, c := range report.Comparisons {
		metrics = append(metrics, c.Metric+" ("+c.With+" − "+c.Without+")")
	}
	fmt.Println("comparisons:", strings.Join(metrics, ", "))
	switch report.VerdictCode {
	case "amplifies", "reduces", "mixed", "not_distinguishable", "not_applicable":
		fmt.Println("verdict code known: true")
	default:
		fmt.Println("verdict code known: false,", report.VerdictCode)
	}
	// Output:
	// original BatchNorm layers: 2, attacks: 5, intervals hold their estimates: true
	// remove   BatchNorm layers: 0, attacks: 5, intervals hold their estimates: true
	// comparisons: member_loss_auc (original − remove), canary_loss_auc (original − remove), grad_norm_ratio (original − remove)
	// verdict code known: true
}

// ExampleAudit audits an already trained model, as one would a third-party
// model: its known training samples (members) are attacked against samples
// it never saw (non-members). Here the model is the small CNN trained
// briefly on 200 Fashion-MNIST images; the audit runs the four threshold
// attacks (References 0: no reference models, so no LiRA or RMIA), each with
// a bootstrap interval on its AUC and TPR at low FPR, and reports the
// BatchNorm layers it found in the model.
func ExampleAudit() {
	if err := ort.Init(""); err != nil { // finds ONNX Runtime (scripts/install-ort.sh)
		fmt.Println(err)
		return
	}
	members, err := loadNormalized("../testdata/fashion-mnist", "train", 200)
	if err != nil {
		fmt.Println(err)
		return
	}
	nonMembers, err := loadNormalized("../testdata/fashion-mnist", "test", 200)
	if err != nil {
		fmt.Println(err)
		return
	}
	model, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		fmt.Println(err)
		return
	}
	session := ort.SessionOptions{Threads: 2}
	// The model under audit: trained on the members only.
	trained, err := trainer.Train(context.Background(), trainer.Config{Model: model, Init: trainer.InitScratch,
		Train: members, Epochs: 2, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02,
		Schedule: trainer.Cosine, Seed: 1, Session: session})
	if err != nil {
		fmt.Println(err)
		return
	}

	report, err := study.Audit(context.Background(), study.AuditConfig{
		Model:      trained.Model,
		Members:    members,
		NonMembers: nonMembers,
		Bootstrap:  audit.BootstrapOptions{Replicates: 200, Seed: 1},
		Session:    session,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	v := report.Variants[0]
	var names []string
	inRange := true
	for _, a := range v.Attacks {
		names = append(names, a.Attack)
		inRange = inRange && 0 <= a.AUC.Lo && a.AUC.Lo <= a.AUC.Estimate && a.AUC.Estimate <= a.AUC.Hi && a.AUC.Hi <= 1
	}
	fmt.Println("kind:", report.Kind)
	fmt.Println("attacks:", strings.Join(names, ", "))
	fmt.Printf("%s attack on %d members vs %d non-members\n", v.Attacks[0].Attack, v.Attacks[0].Members, v.Attacks[0].NonMembers)
	fmt.Println("BatchNorm layers:", v.BatchNorms)
	fmt.Println("every AUC interval within [0, 1]:", inRange)
	fmt.Println("verdict code:", report.VerdictCode)
	// Output:
	// kind: audit
	// attacks: loss, confidence, entropy, modified_entropy, gap
	// loss attack on 200 members vs 200 non-members
	// BatchNorm layers: 2
	// every AUC interval within [0, 1]: true
	// verdict code: not_applicable
}
