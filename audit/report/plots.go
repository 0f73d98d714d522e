package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plots are drawn with gonum.org/v1/plot into SVG (vgsvg, which escapes
// every text it draws) and inlined in report.html.

// figure is one rendered plot: its SVG, or why it could not be drawn.
type figure struct {
	Title   string
	Caption string
	SVG     template.HTML
	Err     string
	// Small asks for a narrower place on the page.
	Small bool
}

// Plot sizes in points.
const (
	plotW      = 360
	plotH      = 290
	smallPlotW = 240
	smallPlotH = 220
	// rocFloor is the lowest rate shown on a ROC plot's log axes.
	rocFloor = 1e-4
	// maxTickName is how many runes of a name a tick label shows.
	maxTickName = 18
)

// palette is the Okabe–Ito palette, distinguishable with the common forms
// of colour blindness.
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0x00, 0x00, 0x00, 0xff}, // black
	{0xF0, 0xE4, 0x42, 0xff}, // yellow
}

var (
	grey     = color.RGBA{0x80, 0x80, 0x80, 0xff}
	bnColor  = palette[0]
	nobColor = palette[1]
	dashed   = []vg.Length{vg.Points(4), vg.Points(3)}
)

// dashesFor gives lines beyond the palette a dash pattern, so that no two
// lines of one plot look alike.
func dashesFor(i int) []vg.Length {
	switch (i / len(palette)) % 3 {
	case 1:
		return []vg.Length{vg.Points(5), vg.Points(2)}
	case 2:
		return []vg.Length{vg.Points(1), vg.Points(2)}
	}
	return nil
}

func colorFor(i int) color.RGBA { return palette[i%len(palette)] }

// translucent returns c with alpha a (color.RGBA is premultiplied, so the
// alpha goes on a non-premultiplied copy).
func translucent(c color.RGBA, a uint8) color.NRGBA {
	return color.NRGBA{R: c.R, G: c.G, B: c.B, A: a}
}

// logTicks labels every power of ten within the axis range, and also 2
// and 5 times it when the range spans fewer than three decades, with minor
// ticks at the other multiples. (plot.LogTicks truncates log10 of the
// minimum toward zero and can drop the lowest decade's label.)
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	const tol = 1e-9
	dense := math.Log10(hi/lo) < 3
	for e := math.Floor(math.Log10(lo) + tol); e <= math.Ceil(math.Log10(hi)-tol); e++ {
		p := math.Pow(10, e)
		for k := 1; k <= 9; k++ {
			v := float64(k) * p
			if v < lo*(1-tol) || v > hi*(1+tol) {
				continue
			}
			t := plot.Tick{Value: v}
			if k == 1 || dense && (k == 2 || k == 5) {
				t.Label = strconv.FormatFloat(v, 'g', 6, 64)
			}
			out = append(out, t)
		}
	}
	return out
}

// variantColor is blue for a variant with BatchNorm, vermillion without.
func variantColor(vr *audit.VariantReport) color.RGBA {
	if vr.BatchNorms > 0 {
		return bnColor
	}
	return nobColor
}

// newPlot returns a plot with a sans-serif font throughout.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 11)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 9.5)
		a.Tick.Label.Font = font.From(sans, 8)
	}
	p.Legend.TextStyle.Font = font.From(sans, 8)
	p.Legend.ThumbnailWidth = vg.Points(18)
	return p
}

// render draws the plot as inline SVG. gonum/plot panics on some inputs
// (a log axis reaching zero); the panic becomes the figure's error, so one
// bad plot cannot lose the whole report.
func render(title, caption string, p *plot.Plot, w, h float64) (fig figure) {
	fig = figure{Title: title, Caption: caption}
	defer func() {
		if r := recover(); r != nil {
			fig.SVG, fig.Err = "", fmt.Sprint("the plot could not be drawn: ", r)
		}
	}()
	c := vgsvg.New(vg.Points(w), vg.Points(h))
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		fig.Err = "the plot could not be drawn: " + err.Error()
		return fig
	}
	s := b.String()
	// Drop the XML declaration and comment: inline SVG starts at <svg.
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = strings.Replace(s, "<svg ", `<svg role="img" class="plot" `, 1)
	// The SVG is vgsvg's output: its text has been escaped with
	// html.EscapeString, and nothing else in it comes from the data.
	fig.SVG = template.HTML(s) //nolint:gosec // escaped by vgsvg, see above
	return fig
}

func failed(title, msg string) figure {
	return figure{Title: title, Err: msg}
}

// shortName cuts a name for a tick label.
func shortName(s string) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > maxTickName {
		return string(r[:maxTickName-1]) + "…"
	}
	return s
}

// logFloor returns the lowest power of ten not above 1/n, and not below
// rocFloor: the smallest nonzero rate n samples can show.
func logFloor(n int) float64 {
	if n <= 0 {
		return rocFloor
	}
	return math.Max(rocFloor, math.Pow(10, math.Floor(math.Log10(1/float64(n)))))
}

// rocFigure draws one line per attack on log-log axes, with the diagonal
// of a random guess dashed. A point at rate 0 is drawn at the axis floor.
func rocFigure(title string, atts []audit.AttackReport) figure {
	nonMembers, members := 0, 0
	for _, a := range atts {
		nonMembers = max(nonMembers, a.NonMembers)
		members = max(members, a.Members)
	}
	xFloor, yFloor := logFloor(nonMembers), logFloor(members)
	p := newPlot(title, "false-positive rate", "true-positive rate")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{}, logTicks{}
	p.Legend.Top, p.Legend.Left = false, false

	lo := math.Max(xFloor, yFloor)
	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: 1, Y: 1}})
	if err != nil {
		return failed(title, err.Error())
	}
	diag.Color, diag.Dashes = grey, dashed
	p.Add(diag)
	drawn := 0
	for i, a := range atts {
		var xys plotter.XYs
		for _, pt := range a.ROC {
			if math.IsNaN(pt.FPR) || math.IsNaN(pt.TPR) {
				continue
			}
			xys = append(xys, plotter.XY{X: clamp(pt.FPR, xFloor, 1), Y: clamp(pt.TPR, yFloor, 1)})
		}
		if len(xys) < 2 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return failed(title, err.Error())
		}
		l.Color, l.Width, l.Dashes = colorFor(i), vg.Points(1.3), dashesFor(i)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (AUC %s)", shortName(a.Attack), fmtNum(a.AUC.Estimate, 3)), l)
		drawn++
	}
	if drawn == 0 {
		return failed(title, "no ROC curve to draw")
	}
	p.Legend.Add("random guess", diag)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xFloor, 1, yFloor, 1
	caption := fmt.Sprintf("Both axes are logarithmic, from %g (false-positive rate) and %g (true-positive rate) to 1; a rate of 0 is drawn at the floor. The dashed line is a random guess.", xFloor, yFloor)
	return render(title, caption, p, plotW, plotH)
}

func clamp(x, lo, hi float64) float64 { return math.Min(hi, math.Max(lo, x)) }

// histogramFigure draws the outlier and typical gradient-norm histograms of
// one checkpoint as the share of each group per bin, so that 50 canaries
// and 5,000 members compare. The x axis is logarithmic when the edges are
// positive and span more than two decades.
func histogramFigure(title string, pt audit.GradNormPoint) figure {
	p := newPlot(title, "per-sample gradient norm", "share of samples per bin")
	p.Legend.Top = true
	logX := true
	n := 0
	for _, d := range []audit.Distribution{pt.Outlier, pt.Typical} {
		if !hasHistogram(&d) {
			continue
		}
		n++
		if d.Edges[0] <= 0 || d.Edges[len(d.Edges)-1]/d.Edges[0] <= 100 {
			logX = false
		}
	}
	if n == 0 {
		return failed(title, "no histogram was recorded")
	}
	if logX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	for _, g := range []struct {
		name string
		d    audit.Distribution
		c    color.RGBA
	}{
		{"outliers (canaries)", pt.Outlier, palette[1]},
		{"typical (members)", pt.Typical, palette[0]},
	} {
		d := g.d
		if !hasHistogram(&d) {
			continue
		}
		total := 0
		for _, c := range d.Counts {
			total += c
		}
		if total == 0 {
			continue
		}
		shares := make([]float64, len(d.Counts))
		for j, c := range d.Counts {
			shares[j] = float64(c) / float64(total)
		}
		l, err := plotter.NewLine(steps(d.Edges, shares, 0))
		if err != nil {
			return failed(title, err.Error())
		}
		fill := translucent(g.c, 0x40)
		l.Color, l.FillColor, l.Width = g.c, fill, vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s, median %s (n=%d)", g.name, fmtValue(d.Median), d.N), l)
	}
	p.Y.Min = 0
	caption := fmt.Sprintf("Epoch %d, %s. Ratio of medians outlier/typical: %s.", pt.Epoch, modeName(pt.Mode), fmtInterval(pt.Ratio))
	return render(title, caption, p, plotW, plotH)
}

// whiskers draws intervals as vertical segments with caps, at given x.
// (plotter.YErrorBars takes errors relative to an estimate, which a
// percentile interval need not contain.)
type whiskers struct {
	x, lo, hi []float64
	draw.LineStyle
	capWidth vg.Length
}

func (w *whiskers) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i := range w.x {
		if math.IsNaN(w.lo[i]) || math.IsNaN(w.hi[i]) || math.IsInf(w.lo[i], 0) || math.IsInf(w.hi[i], 0) {
			continue
		}
		x, y0, y1 := trX(w.x[i]), trY(w.lo[i]), trY(w.hi[i])
		c.StrokeLine2(w.LineStyle, x, y0, x, y1)
		c.StrokeLine2(w.LineStyle, x-w.capWidth/2, y0, x+w.capWidth/2, y0)
		c.StrokeLine2(w.LineStyle, x-w.capWidth/2, y1, x+w.capWidth/2, y1)
	}
}

func (w *whiskers) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for i := range w.x {
		for _, y := range []float64{w.lo[i], w.hi[i]} {
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
		xmin, xmax = math.Min(xmin, w.x[i]), math.Max(xmax, w.x[i])
	}
	return xmin, xmax, ymin, ymax
}

func newWhiskers() *whiskers {
	return &whiskers{LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(1)}, capWidth: vg.Points(6)}
}

// ratioFigure draws the outlier/typical gradient-norm ratio along training,
// one line per mode, with interval whiskers and a dashed line at 1 (no
// difference). The y axis is logarithmic when the values span more than a
// decade.
func ratioFigure(title string, pts []audit.GradNormPoint) figure {
	p := newPlot(title, "epoch", "median outlier / median typical")
	p.Legend.Top, p.Legend.Left = true, true
	lo, hi := math.Inf(1), math.Inf(-1)
	minEpoch, maxEpoch := math.Inf(1), math.Inf(-1)
	for _, pt := range pts {
		for _, y := range []float64{pt.Ratio.Estimate, pt.Ratio.Lo, pt.Ratio.Hi} {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				lo, hi = math.Min(lo, y), math.Max(hi, y)
			}
		}
		minEpoch, maxEpoch = math.Min(minEpoch, float64(pt.Epoch)), math.Max(maxEpoch, float64(pt.Epoch))
	}
	if math.IsInf(lo, 1) {
		return failed(title, "no ratio was measured")
	}
	lo, hi = math.Min(lo, 1), math.Max(hi, 1)
	logY := lo > 0 && hi/lo > 10
	if logY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	one, err := plotter.NewLine(plotter.XYs{{X: minEpoch, Y: 1}, {X: maxEpoch, Y: 1}})
	if err != nil {
		return failed(title, err.Error())
	}
	one.Color, one.Dashes = grey, dashed
	p.Add(one)
	for i, mode := range gradModes(pts) {
		var xys plotter.XYs
		wh := newWhiskers()
		for _, pt := range pts {
			if pt.Mode != mode || math.IsNaN(pt.Ratio.Estimate) || math.IsInf(pt.Ratio.Estimate, 0) || (logY && pt.Ratio.Estimate <= 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(pt.Epoch), Y: pt.Ratio.Estimate})
			l, h := pt.Ratio.Lo, pt.Ratio.Hi
			if logY && (l <= 0 || h <= 0) {
				l, h = math.NaN(), math.NaN()
			}
			wh.x, wh.lo, wh.hi = append(wh.x, float64(pt.Epoch)), append(wh.lo, l), append(wh.hi, h)
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return failed(title, err.Error())
		}
		c := colorFor(i)
		line.Color, line.Width = c, vg.Points(1.3)
		points.Color, points.Shape, points.Radius = c, draw.CircleGlyph{}, vg.Points(2.5)
		wh.Color = c
		p.Add(wh, line, points)
		p.Legend.Add(modeName(mode), line, points)
	}
	p.Legend.Add("equal (ratio 1)", one)
	pad := 0.5
	if maxEpoch > minEpoch {
		pad = 0.04 * (maxEpoch - minEpoch)
	}
	p.X.Min, p.X.Max = minEpoch-pad, maxEpoch+pad
	p.X.Tick.Marker = integerTicks{}
	// A little headroom above the data.
	if logY {
		p.Y.Min, p.Y.Max = lo/1.2, hi*math.Pow(hi/lo, 0.1)
	} else {
		p.Y.Min = math.Min(0, lo)
		p.Y.Max = hi + 0.1*(hi-p.Y.Min)
	}
	caption := "Median gradient norm of outliers over that of typical members at each checkpoint, with 95% intervals; above the dashed line outliers pull harder."
	return render(title, caption, p, plotW, plotH)
}

// integerTicks labels whole numbers only (epochs).
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Label != "" && t.Value != math.Trunc(t.Value) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// barsFigure draws one bar per variant with its interval as whiskers,
// coloured by whether the variant has BatchNorm.
func barsFigure(title, caption, ylabel string, variants []audit.VariantReport, value func(*audit.VariantReport) (audit.Interval, bool)) figure {
	p := newPlot(title, "", ylabel)
	p.Legend.Top = true
	wh := newWhiskers()
	var names []string
	lo, hi := 0.0, 0.0
	legend := map[bool]bool{}
	for i := range variants {
		vr := &variants[i]
		names = append(names, shortName(vr.Name))
		iv, ok := value(vr)
		if !ok || math.IsNaN(iv.Estimate) || math.IsInf(iv.Estimate, 0) {
			continue
		}
		bar, err := plotter.NewBarChart(plotter.Values{iv.Estimate}, vg.Points(30))
		if err != nil {
			return failed(title, err.Error())
		}
		bar.XMin = float64(i)
		c := variantColor(vr)
		bar.Color, bar.LineStyle.Color = translucent(c, 0x90), c
		p.Add(bar)
		bn := vr.BatchNorms > 0
		if !legend[bn] {
			legend[bn] = true
			if bn {
				p.Legend.Add("with BatchNorm", bar)
			} else {
				p.Legend.Add("without BatchNorm", bar)
			}
		}
		wh.x, wh.lo, wh.hi = append(wh.x, float64(i)), append(wh.lo, iv.Lo), append(wh.hi, iv.Hi)
		for _, y := range []float64{iv.Estimate, iv.Lo, iv.Hi} {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				lo, hi = math.Min(lo, y), math.Max(hi, y)
			}
		}
	}
	if len(wh.x) == 0 {
		return failed(title, "nothing was measured")
	}
	p.Add(wh)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(variants))-0.4
	p.Y.Min = lo
	p.Y.Max = hi + 0.25*(hi-lo) // room for the legend
	if p.Y.Max == p.Y.Min {
		p.Y.Max = p.Y.Min + 1
	}
	w := math.Max(smallPlotW, 70*float64(len(variants))+90)
	fig := render(title, caption, p, w, smallPlotH)
	fig.Small = true
	return fig
}

// hasHistogram reports whether d carries a histogram: Edges one longer
// than a non-empty Counts.
func hasHistogram(d *audit.Distribution) bool {
	return d != nil && len(d.Counts) > 0 && len(d.Edges) == len(d.Counts)+1
}

// steps returns the outline of a histogram: height h[j] over the bin from
// edges[j] to edges[j+1], never below floor, starting and ending at floor
// (the bottom of the axis: a logarithmic axis has no zero).
func steps(edges, h []float64, floor float64) plotter.XYs {
	xys := plotter.XYs{{X: edges[0], Y: floor}}
	for j, y := range h {
		y = math.Max(y, floor)
		xys = append(xys, plotter.XY{X: edges[j], Y: y}, plotter.XY{X: edges[j+1], Y: y})
	}
	return append(xys, plotter.XY{X: edges[len(edges)-1], Y: floor})
}

// skewedRatio is how many times a histogram's highest bar must exceed its
// lowest non-empty one for the y axis to be logarithmic: on a linear axis
// a bar below a twentieth of the highest is a few points tall and reads as
// empty.
const skewedRatio = 20

// skewed returns the lowest positive and the highest of the heights, and
// whether they span more than skewedRatio.
func skewed(hs ...[]float64) (minPos, maxH float64, logY bool) {
	minPos = math.Inf(1)
	for _, h := range hs {
		for _, y := range h {
			if y > 0 && !math.IsInf(y, 0) {
				minPos, maxH = math.Min(minPos, y), math.Max(maxH, y)
			}
		}
	}
	return minPos, maxH, maxH > skewedRatio*minPos
}

// headroom is the top of a histogram's y axis: room above the highest bar
// for the legend.
func headroom(floor, maxH float64, logY bool) float64 {
	if logY {
		return maxH * math.Pow(maxH/floor, 0.25)
	}
	return 1.3 * maxH
}

// binCounts lists a histogram's bins with their counts, for a plot's
// accessible name: "[0, 0.1): 4590; …; [0.9, 1]: 10" (the last bin holds
// its upper edge).
func binCounts(d *audit.Distribution) string {
	parts := make([]string, len(d.Counts))
	for j, c := range d.Counts {
		end := ")"
		if j == len(d.Counts)-1 {
			end = "]"
		}
		parts[j] = "[" + fmtEdge(d.Edges[j]) + ", " + fmtEdge(d.Edges[j+1]) + end + ": " + strconv.Itoa(c)
	}
	return strings.Join(parts, "; ")
}

// fmtEdge formats a histogram edge with up to four significant digits.
func fmtEdge(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

// labelled gives a drawn figure's SVG an accessible name (aria-label): the
// plot's content in words and numbers, for a reader who cannot see it.
func labelled(fig figure, label string) figure {
	if fig.SVG == "" {
		return fig
	}
	attr := `aria-label="` + template.HTMLEscapeString(oneLine(label)) + `" `
	// The label is escaped above; the rest is render's SVG.
	fig.SVG = template.HTML(strings.Replace(string(fig.SVG), `<svg role="img" `, `<svg role="img" `+attr, 1)) //nolint:gosec // see above
	return fig
}

// fzAxis is the x axis of the Feldman–Zhang plots.
const fzAxis = "Feldman–Zhang memorization score"

// fzMeaning says in words what the Feldman–Zhang score is.
const fzMeaning = "the accuracy on a sample of the reference models trained with it minus that of the reference models trained without it (near 0: not memorized; near 1: only the models that saw the sample get it right)"

// feldmanZhangFigure draws one variant's histogram of Feldman–Zhang
// memorization scores as the number of samples per bin. Most samples score
// near 0, so the y axis is logarithmic when the bars span more than
// skewedRatio; an empty bin then has no bar.
func feldmanZhangFigure(title, name string, fz *audit.Distribution, c color.RGBA) figure {
	if !hasHistogram(fz) {
		return failed(title, "no histogram was recorded")
	}
	counts := make([]float64, len(fz.Counts))
	total := 0
	for j, n := range fz.Counts {
		counts[j], total = float64(n), total+n
	}
	if total <= 0 {
		return failed(title, "no sample has a Feldman–Zhang score")
	}
	p := newPlot(title, fzAxis, "number of samples")
	p.Legend.Top = true
	_, maxH, logY := skewed(counts)
	floor := 0.0
	if logY {
		floor = 0.5 // below one sample: a bin of one has a bar
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	} else {
		p.Y.Tick.Marker = integerTicks{}
	}
	l, err := plotter.NewLine(steps(fz.Edges, counts, floor))
	if err != nil {
		return failed(title, err.Error())
	}
	l.Color, l.FillColor, l.Width = c, translucent(c, 0x40), vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(fmt.Sprintf("%s: median %s (n=%d)", name, fmtValue(fz.Median), fz.N), l)
	p.X.Min, p.X.Max = fz.Edges[0], fz.Edges[len(fz.Edges)-1]
	p.Y.Min, p.Y.Max = floor, headroom(floor, maxH, logY)
	caption := fmt.Sprintf("Feldman–Zhang memorization of the %d samples the reference models score: %s. Mean %s, median %s, 90th percentile %s, max %s.",
		fz.N, fzMeaning, fmtValue(fz.Mean), fmtValue(fz.Median), fmtValue(fz.P90), fmtValue(fz.Max))
	if logY {
		caption += " The number of samples is on a logarithmic axis; an empty bin has no bar."
	}
	fig := render(title, caption, p, plotW, plotH)
	return labelled(fig, fmt.Sprintf("Histogram of the Feldman–Zhang memorization scores of %s (%d samples), samples per score bin: %s", name, fz.N, binCounts(fz)))
}

// feldmanZhangCompareFigure overlays the variants' histograms of
// Feldman–Zhang scores, one line per variant that has one, as the share of
// the variant's scored samples per bin, so that variants with different
// numbers of samples compare; where the variants' bins differ, as the
// share per unit of score. The y axis is logarithmic when skewed; an empty
// bin then drops to the bottom of the axis.
func feldmanZhangCompareFigure(title string, variants []audit.VariantReport) figure {
	type series struct {
		i  int
		vr *audit.VariantReport
		h  []float64
	}
	var ss []series
	for i := range variants {
		vr := &variants[i]
		if !hasHistogram(vr.FeldmanZhang) {
			continue
		}
		total := 0
		for _, c := range vr.FeldmanZhang.Counts {
			total += c
		}
		if total <= 0 {
			continue
		}
		h := make([]float64, len(vr.FeldmanZhang.Counts))
		for j, c := range vr.FeldmanZhang.Counts {
			h[j] = float64(c) / float64(total)
		}
		ss = append(ss, series{i: i, vr: vr, h: h})
	}
	if len(ss) == 0 {
		return failed(title, "no histogram was recorded")
	}
	sameBins := true
	for _, s := range ss[1:] {
		sameBins = sameBins && slices.Equal(s.vr.FeldmanZhang.Edges, ss[0].vr.FeldmanZhang.Edges)
	}
	ylabel := "share of samples per bin"
	if !sameBins {
		ylabel = "share of samples per unit of score"
		for _, s := range ss {
			e := s.vr.FeldmanZhang.Edges
			for j := range s.h {
				w := e[j+1] - e[j]
				if !(w > 0) {
					return failed(title, "the histogram's bin edges do not increase")
				}
				s.h[j] /= w
			}
		}
	}
	all := make([][]float64, len(ss))
	for k, s := range ss {
		all[k] = s.h
	}
	minPos, maxH, logY := skewed(all...)
	p := newPlot(title, fzAxis, ylabel)
	p.Legend.Top = true
	floor := 0.0
	if logY {
		floor = minPos / 2
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	var label []string
	for _, s := range ss {
		d := s.vr.FeldmanZhang
		l, err := plotter.NewLine(steps(d.Edges, s.h, floor))
		if err != nil {
			return failed(title, err.Error())
		}
		c := colorFor(s.i)
		l.Color, l.FillColor, l.Width, l.Dashes = c, translucent(c, 0x26), vg.Points(1.4), dashesFor(s.i)
		p.Add(l)
		bn := "no BN"
		if s.vr.BatchNorms > 0 {
			bn = "with BN"
		}
		name := shortName(s.vr.Name)
		p.Legend.Add(fmt.Sprintf("%s (%s), median %s (n=%d)", name, bn, fmtValue(d.Median), d.N), l)
		xmin, xmax = math.Min(xmin, d.Edges[0]), math.Max(xmax, d.Edges[len(d.Edges)-1])
		label = append(label, fmt.Sprintf("%s (%d samples): %s.", name, d.N, binCounts(d)))
	}
	p.X.Min, p.X.Max = xmin, xmax
	p.Y.Min, p.Y.Max = floor, headroom(floor, maxH, logY)
	caption := "Feldman–Zhang memorization of each variant's samples, scored by that variant's reference models: " + fzMeaning + ". "
	if sameBins {
		caption += "Each line is the share of the variant's scored samples in each bin, so that variants compare whatever their number of samples."
	} else {
		caption += "The variants' bins differ, so each line is the share of the variant's scored samples per unit of score (a density)."
	}
	if logY {
		caption += " The share is on a logarithmic axis; an empty bin drops to its bottom."
	}
	fig := render(title, caption, p, plotW, plotH)
	return labelled(fig, "Histograms of the Feldman–Zhang memorization scores by variant, samples per score bin. "+strings.Join(label, " "))
}
