package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// TestJSONNaNIsNull: report.json is valid JSON in which the fixture's NaN
// balanced accuracy and infinite AUC bound are null and their neighbours
// are numbers.
func TestJSONNaNIsNull(t *testing.T) {
	dir := writeFixture(t)
	data, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatal("report.json is not valid JSON")
	}
	if !bytes.HasPrefix(data, []byte("{\n  \"schema\": \"bnaudit.report/v1\",\n")) {
		t.Errorf("report.json does not start with its schema:\n%.200s", data)
	}
	var tree map[string]any
	if err := json.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	conf := tree["variants"].([]any)[0].(map[string]any)["attacks"].([]any)[2].(map[string]any)
	if conf["attack"] != "confidence" {
		t.Fatalf("attack %v, want confidence", conf["attack"])
	}
	if v, ok := conf["balanced_accuracy"]; !ok || v != nil {
		t.Errorf("NaN balanced_accuracy = %v (present %v), want null", v, ok)
	}
	auc := conf["auc"].(map[string]any)
	if auc["hi"] != nil {
		t.Errorf("infinite AUC bound = %v, want null", auc["hi"])
	}
	if auc["estimate"] != 0.5401 || auc["lo"] != 0.5322 {
		t.Errorf("AUC = %v, want estimate 0.5401, lo 0.5322", auc)
	}
	// The most exposed members: NaN memorization, loss and FPR are null,
	// the other numbers stay.
	orig := tree["variants"].([]any)[0].(map[string]any)
	if orig["most_vulnerable_attack"] != "lira_online" {
		t.Errorf("most_vulnerable_attack = %v, want lira_online", orig["most_vulnerable_attack"])
	}
	vul := orig["most_vulnerable"].([]any)
	if len(vul) != 7 {
		t.Fatalf("%d most vulnerable members, want 7", len(vul))
	}
	second := vul[1].(map[string]any)
	if second["index"] != 114.0 || second["score"] != 2.5 || second["fpr"] != 0.01 || second["canary"] != false || second["member"] != true {
		t.Errorf("second most vulnerable member %v", second)
	}
	if v, ok := second["memorization"]; !ok || v != nil {
		t.Errorf("NaN memorization = %v (present %v), want null", v, ok)
	}
	if v, ok := vul[3].(map[string]any)["loss"]; !ok || v != nil {
		t.Errorf("NaN loss = %v (present %v), want null", v, ok)
	}
	if v, ok := vul[4].(map[string]any)["fpr"]; !ok || v != nil {
		t.Errorf("NaN FPR = %v (present %v), want null", v, ok)
	}
	if v := vul[0].(map[string]any)["loss"]; v != 1.2e-7 {
		t.Errorf("loss %v, want 1.2e-7", v)
	}
	if _, ok := tree["variants"].([]any)[1].(map[string]any)["feldman_zhang"]; ok {
		t.Error("omitempty feldman_zhang of the remove variant was written")
	}
	if _, ok := tree["Samples"]; ok {
		t.Error("the sample table was written into report.json")
	}

	// A plain encoding/json consumer reads it (nulls leave zeros).
	var plain audit.Report
	if err := json.Unmarshal(data, &plain); err != nil {
		t.Fatalf("encoding/json cannot read report.json: %v", err)
	}
	if plain.Variants[0].Attacks[0].AUC.Estimate != 0.5443 {
		t.Errorf("encoding/json read AUC %v", plain.Variants[0].Attacks[0].AUC)
	}
}

// TestReadJSONRoundTrip: ReadJSON gives back the report that was written,
// with NaN where it had NaN or ±Inf, and no sample table.
func TestReadJSONRoundTrip(t *testing.T) {
	dir := writeFixture(t)
	f, err := os.Open(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	want := fixtureReport()
	want.Samples = nil
	want.Variants[0].Attacks[2].AUC.Hi = math.NaN() // +Inf was written as null
	if !deepEqualNaN(reflect.ValueOf(got), reflect.ValueOf(want)) {
		g, _ := marshalJSON(got)
		w, _ := marshalJSON(want)
		t.Errorf("round trip differs:\ngot  %.2000s\nwant %.2000s", g, w)
	}
	if !math.IsNaN(got.Variants[0].Attacks[2].BalancedAcc) {
		t.Errorf("null balanced accuracy read as %v, want NaN", got.Variants[0].Attacks[2].BalancedAcc)
	}
	// The new fields explicitly, should the comparison above be loosened.
	v := got.Variants[0]
	if v.VulnerableBy != "lira_online" || len(v.Vulnerable) != 7 {
		t.Fatalf("most vulnerable by %q: %d members, want lira_online: 7", v.VulnerableBy, len(v.Vulnerable))
	}
	r := v.Vulnerable[1]
	if r.Index != 114 || r.Label != 2 || !r.Member || r.Canary || r.Score != 2.5 || r.FPR != 0.01 || r.Loss != 0.0031 || !math.IsNaN(r.Memorization) {
		t.Errorf("second most vulnerable member read as %+v", r)
	}
	if !v.Vulnerable[0].Canary || !math.IsNaN(v.Vulnerable[3].Loss) || !math.IsNaN(v.Vulnerable[4].FPR) {
		t.Errorf("most vulnerable members read as %+v", v.Vulnerable)
	}
	if len(got.Variants[0].Slices) != 4 || got.Variants[0].Slices[3].Slice != "incorrect" || got.Variants[0].Slices[3].Attack.ROC != nil {
		t.Errorf("slices read as %+v", got.Variants[0].Slices)
	}
}

// TestJSONMatchesEncodingJSON: on a report without NaN, the encoder writes
// exactly what encoding/json writes (field names, omitempty, order, number
// and string forms).
func TestJSONMatchesEncodingJSON(t *testing.T) {
	r := fixtureReport()
	r.Variants[0].Attacks[2].AUC.Hi = 0.5480
	r.Variants[0].Attacks[2].BalancedAcc = 0.53
	r.Notes = nil // null, as encoding/json writes it
	r.Verdict = `quotes " and <html> & unicode −ℓ σ`
	for i := range r.Variants {
		for j := range r.Variants[i].Vulnerable {
			x := &r.Variants[i].Vulnerable[j]
			for _, f := range []*float64{&x.FPR, &x.Loss, &x.Memorization} {
				if math.IsNaN(*f) {
					*f = 0.125
				}
			}
		}
	}
	got, err := marshalJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if !bytes.Equal(got, want) {
		t.Errorf("encoder and encoding/json differ:\ngot  %.1500s\nwant %.1500s", got, want)
	}
}

func TestJSONEncodesEmptyListsAsEmpty(t *testing.T) {
	data, err := encodeJSON(&audit.Report{Kind: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"variants": []`, `"notes": []`, `"definitions": {}`, `"schema": "bnaudit.report/v1"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("report.json of an empty report lacks %s:\n%s", want, data)
		}
	}
}

func TestReadJSONErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"other schema", `{"schema": "bnaudit.report/v9"}`, `schema "bnaudit.report/v9"`},
		{"trailing data", `{"schema": "bnaudit.report/v1"} {}`, "data after"},
		{"not JSON", `{"schema": `, "reading JSON"},
		{"wrong type", `{"schema": "bnaudit.report/v1", "seed": "seven"}`, "seed"},
		{"negative seed", `{"schema": "bnaudit.report/v1", "seed": -1}`, "seed"},
		{"string for a number", `{"schema": "bnaudit.report/v1", "variants": [{"auc": 1, "test_accuracy": {"estimate": "x"}}]}`, "variants[0].test_accuracy.estimate"},
	} {
		_, err := ReadJSON(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "report: ") {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

// dropKey removes every member named key from a decoded JSON tree.
func dropKey(x any, key string) {
	switch v := x.(type) {
	case map[string]any:
		delete(v, key)
		for _, e := range v {
			dropKey(e, key)
		}
	case []any:
		for _, e := range v {
			dropKey(e, key)
		}
	}
}

// TestReadJSONWithoutBalancedAccInterval: a report.json written before
// balanced_accuracy_interval existed still reads, and report.html then
// shows each balanced accuracy alone, without an interval.
func TestReadJSONWithoutBalancedAccInterval(t *testing.T) {
	data, err := encodeJSON(fixtureReport())
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	dropKey(tree, "balanced_accuracy_interval")
	old, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(old, []byte("balanced_accuracy_interval")) || !bytes.Contains(old, []byte(`"balanced_accuracy":0.576`)) {
		t.Fatalf("the old report.json is not as intended:\n%.600s", old)
	}
	r, err := ReadJSON(bytes.NewReader(old))
	if err != nil {
		t.Fatalf("an old report.json does not read: %v", err)
	}
	a := r.Variants[0].Attacks[1]
	if a.Attack != "lira_online" || a.BalancedAcc != 0.576 || a.BalancedAccInterval != (audit.Interval{}) {
		t.Errorf("old attack read as %s, balanced accuracy %v, interval %v", a.Attack, a.BalancedAcc, a.BalancedAccInterval)
	}
	html, err := encodeHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	parseHTML(t, html)
	flat := strings.ReplaceAll(string(html), "\u00a0", " ")
	for _, want := range []string{
		"<td>0.152 [0.141, 0.163]</td><td>0.576</td>", // original, lira_online
		"<td>0.800 [0.700, 0.900]</td><td>0.900</td>", // canaries and the canary slice
		"<td>0.066 [0.055, 0.077]</td><td>n/a</td>",   // NaN stays n/a
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("report.html of an old report.json lacks %s", want)
		}
	}
	if strings.Contains(flat, "0.576 [0.570, 0.582]") || strings.Contains(flat, "0.0000 [0.0000, 0.0000]") {
		t.Error("report.html of an old report.json shows a balanced-accuracy interval")
	}
	if err := WriteMarkdown(&bytes.Buffer{}, r); err != nil {
		t.Errorf("report.md of an old report.json: %v", err)
	}
}

// TestReadJSONRefusesMissingGateNumbers: the numbers the pre-deploy gate
// reads (an attack's AUC, each end of an interval, a TPR and its FPR) must
// be in the file; a deleted, emptied, nulled or mistyped one is bad input
// (audit.ErrInvalidInput), never a zero that passes any limit.
func TestReadJSONRefusesMissingGateNumbers(t *testing.T) {
	data, err := encodeJSON(fixtureReport())
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(t *testing.T, f func(attack map[string]any)) []byte {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var tree map[string]any
		if err := dec.Decode(&tree); err != nil {
			t.Fatal(err)
		}
		attack := tree["variants"].([]any)[0].(map[string]any)["attacks"].([]any)[0].(map[string]any)
		f(attack)
		out, err := json.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    func(a map[string]any)
		want string
	}{
		{"auc deleted", func(a map[string]any) { delete(a, "auc") }, `"auc" is missing`},
		{"auc empty", func(a map[string]any) { a["auc"] = map[string]any{} }, `"estimate" is missing`},
		{"auc null", func(a map[string]any) { a["auc"] = nil }, `"auc" is missing or null`},
		{"auc a number", func(a map[string]any) { a["auc"] = -3 }, "variants[0].attacks[0].auc"},
		{"upper end deleted", func(a map[string]any) { delete(a["auc"].(map[string]any), "hi") }, `"hi" is missing`},
		{"tpr deleted", func(a map[string]any) { delete(a["tpr_at_fpr"].([]any)[0].(map[string]any), "tpr") }, `"tpr" is missing`},
		{"fpr deleted", func(a map[string]any) { delete(a["tpr_at_fpr"].([]any)[0].(map[string]any), "target_fpr") }, `"target_fpr" is missing`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadJSON(bytes.NewReader(tamper(t, c.f)))
			if err == nil || !errors.Is(err, audit.ErrInvalidInput) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one wrapping audit.ErrInvalidInput and mentioning %q", err, c.want)
			}
		})
	}
	// The untouched file reads: the tamper helper itself changes nothing.
	if _, err := ReadJSON(bytes.NewReader(tamper(t, func(map[string]any) {}))); err != nil {
		t.Fatalf("the untampered report does not read: %v", err)
	}
}
