package study

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// BenchmarkGather256 measures a study's gather over 256 reference-model
// results: a comparison of 2 variants × 1 seed with 128 reference models
// each, on 2,000 members and 2,000 non-members (pool 4,020 with the
// canaries). The runs and one reference model per variant are trained for
// real; the other 127 reference models of each variant are copies of it
// under their own names, with their unit records (synthetic results: the
// gather reads, hashes and evaluates-or-loads every one of them, and
// fits LiRA and RMIA over all 128, as with trained ones).
//
//	go test -run '^$' -bench Gather256 -benchtime 1x ./study/
func BenchmarkGather256(b *testing.B) {
	if testing.Short() {
		b.Skip("trains 4 models")
	}
	requireORT(b)
	spec := unitSpec()
	spec.Data.Members.Max, spec.Data.NonMembers.Max = 2000, 2000
	spec.RefModels = 128
	work := b.TempDir()
	plan, err := WritePlan(work, spec)
	if err != nil {
		b.Fatal(err)
	}
	sess := ort.SessionOptions{Threads: 2}
	cfg, err := plan.Config(work, sess)
	if err != nil {
		b.Fatal(err)
	}
	var first = map[string]Unit{}
	for _, u := range plan.Units {
		if u.Kind == UnitReference && u.Model != 0 {
			continue
		}
		if _, err := RunUnit(context.Background(), work, plan, u.Index, &Built{Compare: &cfg}, RunUnitOptions{Engine: "bench"}); err != nil {
			b.Fatal(err)
		}
		if u.Kind == UnitReference {
			first[u.Variant] = u
		}
	}
	for _, u := range plan.Units {
		if u.Kind != UnitReference || u.Model == 0 {
			continue
		}
		src, err := os.ReadFile(resultPath(work, first[u.Variant]))
		if err != nil {
			b.Fatal(err)
		}
		if err := atomicfile.WriteFile(resultPath(work, u), src); err != nil {
			b.Fatal(err)
		}
		rec, _ := json.Marshal(UnitRecord{Unit: u, Engine: "synthetic", Bytes: int64(len(src))})
		if err := atomicfile.WriteFile(unitPath(work, u.Index, "json"), rec); err != nil {
			b.Fatal(err)
		}
	}
	if m := Missing(work, plan); len(m) != 0 {
		b.Fatalf("missing: %v", m)
	}
	cfg.Gather = true
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep, err := Compare(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/gather")
		b.ReportMetric(float64(len(plan.Units)), "units")
		if len(rep.Variants) != 2 {
			b.Fatal("no report")
		}
	}
	b.StopTimer()
	size := int64(0)
	filepath.Walk(work, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	b.ReportMetric(float64(size)/(1<<20), "MiB-in-work-folder")
}
