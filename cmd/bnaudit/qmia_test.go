package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// TestAuditQMIAAcceptance (issue 15, item 2): the bundled small CNN,
// trained by bnaudit's trainer on the first 1,000 Fashion-MNIST training
// images until it overfits them (8 epochs of AdamW), is audited with
// `bnaudit audit --qmia` against the 1,000 test images. The report lists
// qmia beside the other attacks with its cost (1 model), an AUC with its
// interval, TPR at the reported FPRs and PPV at the priors, on the 1,000
// members vs the 500 non-members its regression did not see; scores.csv
// leaves the other 500 empty; and either qmia's AUC is above LOSS's on
// the same samples, or the report says why not. When /usr/bin/python3 has
// scikit-learn, audit/testdata/reproduce_auc.py recomputes every AUC,
// qmia's included.
func TestAuditQMIAAcceptance(t *testing.T) {
	requireORT(t)
	const data = "../../testdata/fashion-mnist"
	members, err := dataset.Load(data, dataset.LoadOptions{Split: "train", MaxSamples: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if members, err = members.WithNorm(dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}); err != nil {
		t.Fatal(err)
	}
	arch, err := onnxio.Load(filepath.Join(models, "small_cnn.training.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := trainer.Train(context.Background(), trainer.Config{Model: arch, Init: trainer.InitScratch, Train: members, Epochs: 8, Batch: 64,
		Optimizer: trainer.AdamW(0), LR: 2e-3, Schedule: trainer.Cosine, Seed: 1, Session: ort.SessionOptions{Threads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	last := res.Epochs[len(res.Epochs)-1]
	t.Logf("target: training accuracy %.3f, loss %.4f after %d epochs", last.TrainAcc, last.TrainLoss, last.Epoch)
	dir := t.TempDir()
	model := filepath.Join(dir, "small_cnn.fitted.onnx")
	if err := res.Model.Save(model); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report")
	code, stdout, stderr := bnaudit(t, "--threads", "2", "audit", model, "--members", data, "--nonmembers", data, "--max-samples", "1000",
		"--norm", "0.2860/0.3530", "--qmia", "--seed", "1", "--bootstrap", "200", "-o", out)
	if code != 0 {
		t.Fatalf("bnaudit audit --qmia: exit %d\n%s\n%s", code, stdout, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	auc := map[string]audit.AttackReport{}
	for _, a := range rep.Variants[0].Attacks {
		auc[a.Attack] = a
	}
	q, ok := auc[audit.AttackQMIA]
	if !ok {
		t.Fatalf("report.json has no qmia attack:\n%s", stdout)
	}
	if q.Members != 1000 || q.NonMembers != 500 || q.ModelsTrained != 1 || len(q.TPRAt) != 2 || len(q.Risk) != 2 ||
		!(q.AUC.Lo < q.AUC.Estimate && q.AUC.Estimate < q.AUC.Hi) {
		t.Errorf("qmia: %d members vs %d non-members, %d models trained, %d TPR@FPR, %d risk rows, AUC %+v",
			q.Members, q.NonMembers, q.ModelsTrained, len(q.TPRAt), len(q.Risk), q.AUC)
	}
	if !strings.Contains(stdout, "| qmia | 1000 | 500 |") || !strings.Contains(stdout, "models trained") {
		t.Errorf("report.md's attack table lacks qmia or its cost:\n%s", stdout)
	}
	// The comparison with LOSS on the same samples, in the notes.
	var cmp string
	for _, n := range rep.Notes {
		if strings.HasPrefix(n, "On the same 1000 members and 500 non-members, LOSS reaches AUC") {
			cmp = n
		}
	}
	t.Logf("LOSS AUC %.3f on all 1000 non-members, qmia %.3f on 500; %s", auc[audit.AttackLoss].AUC.Estimate, q.AUC.Estimate, cmp)
	switch {
	case cmp == "":
		t.Errorf("no note compares qmia with LOSS on the same samples: %q", rep.Notes)
	case q.AUC.Estimate > auc[audit.AttackLoss].AUC.Estimate:
		if !strings.Contains(cmp, "qmia is the stronger of the two here") {
			t.Errorf("qmia is above LOSS, the note says otherwise: %s", cmp)
		}
	case !strings.Contains(cmp, "qmia does not beat LOSS here"):
		t.Errorf("qmia (AUC %.3f) is not above LOSS (%.3f) and the report does not say why: %s", q.AUC.Estimate, auc[audit.AttackLoss].AUC.Estimate, cmp)
	}
	// The verdict gives the strongest attack's own counts.
	if audit.StrongestAttack(rep.Variants[0].Attacks) == audit.AttackQMIA && !strings.Contains(rep.Verdict, "(qmia) reaches AUC") ||
		strings.Contains(rep.Verdict, "(qmia)") && !strings.Contains(rep.Verdict, "on 1000 members vs 500 non-members") {
		t.Errorf("verdict: %s", rep.Verdict)
	}
	// scores.csv: the fitting non-members have no qmia score.
	f, err := os.Open(filepath.Join(out, "scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col, mem := -1, -1
	for i, h := range rows[0] {
		switch h {
		case "score_qmia":
			col = i
		case "member":
			mem = i
		}
	}
	if col < 0 {
		t.Fatalf("scores.csv has no score_qmia column: %q", rows[0])
	}
	empty := map[string]int{}
	for _, r := range rows[1:] {
		if r[col] == "" {
			empty[r[mem]]++
		}
	}
	if empty["0"] != 500 || empty["1"] != 0 {
		t.Errorf("empty qmia scores: %d non-members and %d members, want 500 and 0", empty["0"], empty["1"])
	}
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import sklearn, numpy").Run() != nil {
		t.Log("no /usr/bin/python3 with scikit-learn: reproduce_auc.py not run")
		return
	}
	check, err := exec.Command(py, "../../audit/testdata/reproduce_auc.py", out).CombinedOutput()
	if err != nil || !strings.Contains(string(check), "ok   audited/seed0 members/qmia (csv)") {
		t.Errorf("reproduce_auc.py: %v\n%s", err, check)
	}
	t.Logf("reproduce_auc.py:\n%s", check)
}

// TestQMIAUsage: the quantile-regression attack's flags are checked before
// any work, each refusal one line and exit 2.
func TestQMIAUsage(t *testing.T) {
	dir := t.TempDir()
	audit := func(extra ...string) []string {
		return append([]string{"audit", smallCNN, "--members", fmnist, "--nonmembers", fmnist, "--norm", "0.286/0.353", "-o", filepath.Join(dir, "rep")}, extra...)
	}
	wantUsage(t, "--qmia-fit must be a share in (0, 1), not 1", audit("--qmia", "--qmia-fit", "1")...)
	wantUsage(t, "--qmia-fit must be a share in (0, 1), not 0", audit("--qmia", "--qmia-fit", "0")...)
	wantUsage(t, "--qmia-epochs must be 1 or more", audit("--qmia", "--qmia-epochs", "0")...)
	wantUsage(t, "--ref-models K (K ≥ 2) or --qmia", audit("--population", fmnist)...)
	// a cluster engine runs reference models; qmia alone has no work units
	wantUsage(t, "--engine slurm runs reference models: give --ref-models 2 or more", audit("--qmia", "--engine", "slurm", "--work", filepath.Join(dir, "work"))...)
}

// TestCompareQMIA: compare --qmia adds the quantile-regression attack to
// every variant's run: one regression each, fitted on half the non-members
// and scored on the members against the other half; each row's AUC is the
// Mann–Whitney statistic of the run's score_qmia column in
// samples/VARIANT-seed0.csv, counted here pair by pair.
func TestCompareQMIA(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "rep")
	code, stdout, stderr := bnaudit(t, "--threads", "2", "compare", smallCNN, "--data", fmnist, "--members", "200", "--non-members", "100",
		"--variants", "original,remove", "--canaries", "10", "--epochs", "3", "--grad-checkpoints", "1", "--inbatch=false",
		"--norm", "0.2860/0.3530", "--qmia", "--qmia-epochs", "3", "--bootstrap", "50", "--seed", "2", "-o", out)
	if code != 0 {
		t.Fatalf("compare --qmia: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rep := readReport(t, out)
	if len(rep.Variants) != 2 {
		t.Fatalf("%d variants", len(rep.Variants))
	}
	for _, v := range rep.Variants {
		var q *audit.AttackReport
		for i := range v.Attacks {
			if v.Attacks[i].Attack == audit.AttackQMIA {
				q = &v.Attacks[i]
			}
		}
		if q == nil {
			t.Errorf("%s: no qmia attack", v.Name)
			continue
		}
		if q.Members != 200 || q.NonMembers != 50 || q.ModelsTrained != 1 {
			t.Errorf("%s: qmia on %d members vs %d non-members, %d models trained; want 200, 50, 1", v.Name, q.Members, q.NonMembers, q.ModelsTrained)
		}
		want := mannWhitneyFromCSV(t, filepath.Join(out, "samples", v.Name+"-seed0.csv"), "score_qmia")
		if math.Abs(q.AUC.Estimate-want) > 1e-9 {
			t.Errorf("%s: qmia AUC %.6f, the score column's %.6f", v.Name, q.AUC.Estimate, want)
		}
	}
}

// mannWhitneyFromCSV is the AUC of column col of a scores.csv (members
// against non-members, rows with the score empty left out): the share of
// member/non-member pairs the member wins, ties counted half.
func mannWhitneyFromCSV(t *testing.T, path, col string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("%s: %v (%d rows)", path, err, len(rows))
	}
	ci, mi := slices.Index(rows[0], col), slices.Index(rows[0], "member")
	if ci < 0 || mi < 0 {
		t.Fatalf("%s has no %s or member column: %v", path, col, rows[0])
	}
	var pos, neg []float64
	for _, r := range rows[1:] {
		if r[ci] == "" {
			continue
		}
		v, err := strconv.ParseFloat(r[ci], 64)
		if err != nil {
			t.Fatal(err)
		}
		if r[mi] == "1" {
			pos = append(pos, v)
		} else {
			neg = append(neg, v)
		}
	}
	wins := 0.0
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				wins++
			case p == n:
				wins += 0.5
			}
		}
	}
	return wins / float64(len(pos)*len(neg))
}
