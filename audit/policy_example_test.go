package audit_test

import (
	"fmt"
	"os"

	"github.com/bnaudit/bnaudit/audit"
)

// A pre-deploy gate in Go: check an audit report against a policy and fail
// the build when it does not hold.
func ExampleCheck() {
	report := &audit.Report{Variants: []audit.VariantReport{{
		Name: "original",
		Attacks: []audit.AttackReport{{Attack: "loss", AUC: audit.Interval{Estimate: 0.62, Lo: 0.58, Hi: 0.66},
			TPRAt: []audit.TPRAtInterval{{TargetFPR: 0.01, TPR: audit.Interval{Estimate: 0.03, Lo: 0.01, Hi: 0.06}}}}},
		Memorization: &audit.CanaryGap{AccuracyGap: audit.Interval{Estimate: 0.9, Lo: 0.8, Hi: 0.96}},
	}}}
	res, err := audit.Check(report, audit.Policy{MaxAUC: 0.6, MaxTPR: 0.05, MaxCanaryGap: 0.95})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.Rules {
		fmt.Printf("%-15s %-5v %.2f (limit %.2f)\n", r.Rule, r.Passed, r.Value, r.Limit)
	}
	if !res.Passed {
		res.WriteJUnit(os.Stdout)
	}
	// Output:
	// max_auc         false 0.62 (limit 0.60)
	// max_tpr         true  0.03 (limit 0.05)
	// max_canary_gap  true  0.90 (limit 0.95)
	// <?xml version="1.0" encoding="UTF-8"?>
	// <testsuite name="bnaudit.check" tests="3" failures="1">
	//   <testcase name="max_auc [original]" classname="bnaudit.policy">
	//     <failure message="max_auc: 0.62 &gt; limit 0.6" type="max_auc">best membership-inference AUC (loss)</failure>
	//   </testcase>
	//   <testcase name="max_tpr [original]" classname="bnaudit.policy"></testcase>
	//   <testcase name="max_canary_gap [original]" classname="bnaudit.policy"></testcase>
	// </testsuite>
}
