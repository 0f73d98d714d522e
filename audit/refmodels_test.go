package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// refReport is a one-variant report with a LOSS attack and, when lira is
// set, an online LiRA attack on refs reference models.
func refReport(lira bool, refs int) *Report {
	iv := Interval{Estimate: 0.6, Lo: 0.55, Hi: 0.65}
	v := VariantReport{Name: "audited", RefModels: refs, Attacks: []AttackReport{{Attack: AttackLoss, AUC: iv}}}
	if lira {
		v.Attacks = append(v.Attacks, AttackReport{Attack: AttackLiRAOnline, AUC: iv})
	}
	return &Report{Kind: "audit", Variants: []VariantReport{v}}
}

// TestCheckMinRefModels: min_ref_models passes a report whose reference
// attacks rest on enough models, fails one on fewer (a failed check, not
// an error), and is bad input on a report without reference attacks or
// one that does not record the number.
func TestCheckMinRefModels(t *testing.T) {
	for _, c := range []struct {
		name   string
		r      *Report
		min    int
		passed bool
	}{
		{"4 of 4", refReport(true, 4), 4, true},
		{"8 of 4", refReport(true, 8), 4, true},
		{"2 of 4", refReport(true, 2), 4, false},
		{"3 of 4", refReport(true, 3), 4, false},
	} {
		res, err := Check(c.r, Policy{MinRefModels: c.min})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if res.Passed != c.passed || len(res.Rules) != 1 || res.Rules[0].Rule != "min_ref_models" ||
			res.Rules[0].Value != float64(c.r.Variants[0].RefModels) || res.Rules[0].Limit != float64(c.min) {
			t.Errorf("%s: result %+v, want passed = %v with one min_ref_models rule", c.name, res, c.passed)
		}
	}
	for _, c := range []struct {
		name string
		r    *Report
		want string
	}{
		{"no reference attack", refReport(false, 0), "has no reference-model attack"},
		{"number not recorded", refReport(true, 0), "does not record how many"},
	} {
		res, err := Check(c.r, Policy{MinRefModels: 4})
		if err == nil || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: result %+v, error %v; want an ErrInvalidInput mentioning %q", c.name, res, err, c.want)
		}
	}
	// Alongside another rule, the failed minimum fails the gate.
	res, err := Check(refReport(true, 2), Policy{MaxAUC: 0.9, MinRefModels: 4})
	if err != nil || res.Passed || len(res.Rules) != 2 {
		t.Errorf("max_auc + min_ref_models on 2 models: result %+v, error %v; want two rules, failed", res, err)
	}
}

// TestPolicyMinRefModelsFile: min_ref_models is read from a policy file,
// suffices as the only rule, and must not be negative.
func TestPolicyMinRefModelsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := LoadPolicy(write("ok.yaml", "min_ref_models: 4\n"))
	if err != nil || p.MinRefModels != 4 {
		t.Errorf("min_ref_models: 4 read as %+v, error %v", p, err)
	}
	_, err = LoadPolicy(write("neg.yaml", "max_auc: 0.6\nmin_ref_models: -1\n"))
	wantInvalid(t, "negative min_ref_models", err)
}

// TestFewRefModelsNote: the caveat names the number below the minimum and
// is empty otherwise.
func TestFewRefModelsNote(t *testing.T) {
	for n, want := range map[int]bool{0: false, 1: true, 2: true, 3: true, 4: false, 16: false} {
		note := FewRefModelsNote(n)
		if (note != "") != want {
			t.Errorf("%d models: note %q, want one: %v", n, note, want)
		}
		if want && !strings.Contains(note, "rest on "+strconv.Itoa(n)+" reference model") {
			t.Errorf("%d models: note %q does not give the number", n, note)
		}
	}
}
