package report

import (
	"math"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

func TestFmtInterval(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		in   audit.Interval
		want string
	}{
		{iv(0.5443, 0.5361, 0.5508), "0.544 [0.536, 0.551]"},
		{iv(0.0042, 0.0018, 0.0071), "0.0042 [0.0018, 0.0071]"},
		{iv(0.0042, 0.0018, 0.0123), "0.004 [0.002, 0.012]"},
		{iv(39.2, 35.4, 44.01), "39.20 [35.40, 44.01]"},
		{iv(-14.9, -22.3, -7.2), "-14.90 [-22.30, -7.20]"},
		{iv(123.44, 101, 150), "123.4 [101.0, 150.0]"},
		{iv(1234.6, 1000, 1500), "1235 [1000, 1500]"},
		{iv(-0.00001, -0.0002, 0.01), "0.000 [0.000, 0.010]"},
		{iv(0.5, nan, nan), "0.500 [n/a, n/a]"},
		{iv(nan, nan, nan), "n/a"},
		{iv(0.54, 0.53, inf), "0.540 [0.530, inf]"},
		{iv(0, 0, 0), "0.0000 [0.0000, 0.0000]"},
	} {
		if got := fmtInterval(c.in); got != c.want {
			t.Errorf("fmtInterval(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFmtBalanced(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		est  float64
		in   audit.Interval
		want string
	}{
		{0.625, iv(0.625, 0.6, 0.65), "0.625 [0.600, 0.650]"},
		{0.625, audit.Interval{}, "0.625"},               // an older report.json
		{0.625, iv(nan, nan, nan), "0.625"},              // no interval
		{0.625, iv(nan, 0.6, 0.65), "0.625"},             // no estimate in it
		{nan, audit.Interval{}, "n/a"},                   // nothing measured
		{0.5, iv(0.5, 0.5, 0.5), "0.500 [0.500, 0.500]"}, // a real, degenerate one
	} {
		a := audit.AttackReport{BalancedAcc: c.est, BalancedAccInterval: c.in}
		if got := fmtBalanced(a); got != c.want {
			t.Errorf("fmtBalanced(%v, %v) = %q, want %q", c.est, c.in, got, c.want)
		}
	}
}

func TestFmtFit(t *testing.T) {
	for _, c := range []struct {
		in   audit.Interval
		want string
	}{
		{iv(0.912, 0.912, 0.912), "0.912"},
		{iv(0.912, 0.905, 0.918), "0.912 [0.905, 0.918]"},
	} {
		if got := fmtFit(c.in); got != c.want {
			t.Errorf("fmtFit(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFmtTPR(t *testing.T) {
	for _, c := range []struct {
		allowed, nonMembers int
		want                string
	}{
		{0, 50, "0.620 [0.400, 0.800] (no false positive allowed among 50 non-members)"},
		{1, 1000, "0.620 [0.400, 0.800] (rests on 1 non-member)"},
		{9, 9000, "0.620 [0.400, 0.800] (rests on 9 non-members)"},
		{10, 10000, "0.620 [0.400, 0.800]"},
	} {
		got := fmtTPR(tpr(0.001, iv(0.62, 0.4, 0.8), c.allowed), c.nonMembers)
		if got != c.want {
			t.Errorf("AllowedFP %d: got %q, want %q", c.allowed, got, c.want)
		}
	}
	if got := fmtPercent(0.001); got != "0.1%" {
		t.Errorf("fmtPercent(0.001) = %q", got)
	}
}

func TestMarkdownEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"original", "original"},
		{"lira_online", "lira_online"},
		{"_x_ and *y*", `\_x\_ and \*y\*`},
		{"a|b", `a\|b`},
		{"<script>alert(1)</script>", `\<script\>alert(1)\</script\>`},
		{"[x](http://e)", `\[x\](http://e)`},
		{"see [a][b]", `see [a\][b]`},
		{"[ref]: http://e", `\[ref\]: http://e`},
		{"0.544 [0.536, 0.551] (loss)", "0.544 [0.536, 0.551] (loss)"},
		{"two\nlines\t here", "two lines here"},
		{"&lt; `code` # ~x~", `\&lt; \` + "`code\\`" + ` \# \~x\~`},
		{`back\slash`, `back\\slash`},
	} {
		if got := mdEscape(c.in); got != c.want {
			t.Errorf("mdEscape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (logTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	for _, c := range []struct {
		lo, hi float64
		want   []string
	}{
		{1e-4, 1, []string{"0.0001", "0.001", "0.01", "0.1", "1"}},
		{0.01, 1, []string{"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"}},
		{3, 60, []string{"5", "10", "20", "50"}},
	} {
		got := labels(c.lo, c.hi)
		if len(got) != len(c.want) {
			t.Errorf("[%g, %g]: labels %q, want %q", c.lo, c.hi, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("[%g, %g]: labels %q, want %q", c.lo, c.hi, got, c.want)
				break
			}
		}
	}
}

func TestFmtRate(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0.01, "1%"},
		{0, "0%"},
		{0.0006, "0.06%"},
		{0.0002, "0.02%"},
		{1.0 / 3, "33.3%"},
		{0.125, "12.5%"},
		{1, "100%"},
		{1.0 / 7000, "0.0143%"},
		{1e-9, "0.0000001%"},
		{math.NaN(), "n/a"},
	} {
		if got := fmtRate(c.in); got != c.want {
			t.Errorf("fmtRate(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFmtScore(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{2.5, "2.500"},
		{-1.2e-7, "-1.2e-07"},
		{0.0042, "0.0042"},
		{0, "0.0000"},
		{-12.25, "-12.25"},
		{math.Inf(1), "inf"},
		{math.NaN(), "n/a"},
	} {
		if got := fmtScore(c.in); got != c.want {
			t.Errorf("fmtScore(%v) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := orDash(math.NaN(), fmtValue); got != "–" {
		t.Errorf("NaN with a dash: %q", got)
	}
	if got := orDash(0.5, fmtValue); got != "0.500" {
		t.Errorf("orDash(0.5) = %q", got)
	}
}

func TestSliceName(t *testing.T) {
	for in, want := range map[string]string{
		"class=3": "class=3", "canaries": "canaries", "typical": "typical",
		"correct": "correctly classified", "incorrect": "misclassified",
	} {
		if got := sliceName(in); got != want {
			t.Errorf("sliceName(%q) = %q, want %q", in, got, want)
		}
	}
}
