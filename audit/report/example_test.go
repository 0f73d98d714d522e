package report_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
)

// An audit of one model with one attack, printed as Markdown.
func ExampleWriteMarkdown() {
	r := &audit.Report{
		Tool:        "bnaudit 0.1.0-dev",
		Kind:        "audit",
		Verdict:     "No BN comparison was asked for",
		VerdictCode: "not_applicable",
		Variants: []audit.VariantReport{{
			Name:          "original",
			Model:         "cnn.onnx",
			BatchNorms:    2,
			TrainAccuracy: audit.Interval{Estimate: 0.99, Lo: 0.99, Hi: 0.99},
			TestAccuracy:  audit.Interval{Estimate: 0.9, Lo: 0.9, Hi: 0.9},
			Seeds:         1,
			Attacks: []audit.AttackReport{{
				Attack: "loss", Members: 1000, NonMembers: 1000,
				AUC:       audit.Interval{Estimate: 0.5443, Lo: 0.5361, Hi: 0.5508},
				Advantage: audit.Interval{Estimate: 0.071, Lo: 0.0604, Hi: 0.0822},
				TPRAt: []audit.TPRAtInterval{{
					TargetFPR: 0.01, AllowedFP: 10,
					TPR: audit.Interval{Estimate: 0.0214, Lo: 0.0161, Hi: 0.027},
				}},
			}},
		}},
	}
	if err := report.WriteMarkdown(os.Stdout, r); err != nil {
		fmt.Println(err)
	}
	// Output:
	// # bnaudit audit of cnn.onnx
	//
	// **Verdict: No BN comparison was asked for** (not_applicable)
	//
	// tool: bnaudit 0.1.0-dev · kind: audit · seed: 0
	//
	// | variant | BN layers | test accuracy | train accuracy | canary memorization gap (accuracy) | gradient-norm ratio outlier/typical (last checkpoint, eval mode) | MIA AUC (best attack) | TPR@1% FPR | TPR@1% FPR on canaries |
	// | --- | --- | --- | --- | --- | --- | --- | --- | --- |
	// | original | 2 | 0.900 | 0.990 | n/a | n/a | 0.544 [0.536, 0.551] (loss) | 0.021 [0.016, 0.027] (loss) | n/a |
	//
	// Intervals are 95% bootstrap intervals: estimate [low, high].
	//
	// ## Attacks
	//
	// | attack | members | non-members | AUC | advantage | TPR@1% FPR |
	// | --- | --- | --- | --- | --- | --- |
	// | loss | 1000 | 1000 | 0.544 [0.536, 0.551] | 0.071 [0.060, 0.082] | 0.021 [0.016, 0.027] |
	//
	// Details in report.html (every attack per model with ROC curves, canary memorization, gradient norms along training, attacks per class and on canaries, definitions); numbers in report.json; per-sample data in scores.csv and signals.npz.
}

// Write puts the five files of a report into a folder.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "bnaudit-report-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	r := &audit.Report{Kind: "audit", VerdictCode: "not_applicable", Samples: &audit.SampleTable{
		Index:  []int{0, 1},
		Label:  []int64{3, 7},
		Member: []bool{true, false},
		Scores: map[string][]float64{"loss": {-0.01, -2.3}},
	}}
	if err := report.Write(dir, r); err != nil {
		panic(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	csv, _ := os.ReadFile(filepath.Join(dir, report.ScoresFile))
	fmt.Print(string(csv))
	// Output:
	// report.html
	// report.json
	// report.md
	// scores.csv
	// signals.npz
	// index,label,member,canary,correct,score_loss,memorization,grad_norm_eval,grad_norm_inbatch
	// 0,3,1,0,,-0.01,,,
	// 1,7,0,0,,-2.3,,,
}
