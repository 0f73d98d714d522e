package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// foldTolerance is the largest relative output change fold may cause
// (relative to the largest output magnitude).
const foldTolerance = 1e-5

func ablateCommand() *cli.Command {
	return &cli.Command{
		Name:      "ablate",
		Usage:     "write a copy of a model with its BatchNorm layers folded, removed, frozen or replaced by GroupNorm",
		ArgsUsage: "MODEL",
		Description: "Modes:\n" +
			"  fold       fold running statistics and affine into the preceding Conv/ConvTranspose/Gemm/MatMul;\n" +
			"             the inference function is unchanged (refused, with the reason, where BN is not foldable)\n" +
			"  remove     BN becomes the identity\n" +
			"  freeze     BN always uses its running statistics, in training too; scale and bias stay trainable\n" +
			"  groupnorm  GroupNorm with gcd(32, C) groups (or --groups), scale 1 and bias 0 (or --copy-affine),\n" +
			"             written with ops of the model's own opset\n\n" +
			"--verify runs the original (in inference mode) and the result on ONNX Runtime and reports how far\n" +
			"the outputs moved; for fold it fails (exit 1, nothing written) above 1e-5 relative.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Aliases: []string{"m"}, Usage: "fold, remove, freeze or groupnorm (required)"},
			outputFlag("where to write the new model (required)"),
			&cli.StringSliceFlag{Name: "layers", Usage: "BN layers to ablate, by name or index (comma-separated; default all)"},
			&cli.IntFlag{Name: "groups", Usage: "groupnorm: number of groups (default gcd(32, C))"},
			&cli.BoolFlag{Name: "copy-affine", Usage: "groupnorm: start from BN's scale and bias instead of 1 and 0"},
			&cli.BoolFlag{Name: "verify", Usage: "run both models on ONNX Runtime and compare their outputs"},
			&cli.StringFlag{Name: "verify-data", Usage: "IDX image file (MNIST layout) for --verify; default: random normal inputs"},
			&cli.IntFlag{Name: "verify-batch", Value: 8, Usage: "number of inputs --verify runs"},
			&cli.Float64Flag{Name: "verify-mean", Value: 0.2860, Usage: "normalization mean for --verify-data pixels scaled to [0,1]"},
			&cli.Float64Flag{Name: "verify-std", Value: 0.3530, Usage: "normalization std for --verify-data"},
			seedFlag("seed for random --verify inputs"),
			jsonFlag("print the result as JSON"),
		},
		OnUsageError: commandUsageError,
		Action:       jsonAction(readAblate, runAblate),
	}
}

func readAblate(c *cli.Context) ablateOptions {
	return ablateOptions{global: readGlobal(c), modelPath: readModelPath(c), ModeName: c.String("mode"),
		Mode:   onnxio.AblateOptions{Layers: splitList(c.StringSlice("layers")), Groups: c.Int("groups"), CopyAffine: c.Bool("copy-affine")},
		Output: c.String("output"),
		Verify: c.Bool("verify"), VerifyData: c.String("verify-data"), VerifyBatch: c.Int("verify-batch"),
		Mean: c.Float64("verify-mean"), Std: c.Float64("verify-std"), Seed: c.Uint64("seed"),
		JSON: c.Bool("json"),
	}
}

// ablateOptions are the options of ablate.
type ablateOptions struct {
	global globalOptions
	modelPath
	// ModeName is --mode; runAblate parses it into Mode.Mode.
	ModeName    string
	Mode        onnxio.AblateOptions
	Output      string
	Verify      bool
	VerifyData  string
	VerifyBatch int
	Mean, Std   float64
	Seed        uint64
	JSON        bool
}

func (o ablateOptions) validate() error {
	if o.ModeName == "" || o.Output == "" {
		return usageErrorf("ablate needs --mode and --output; see bnaudit ablate --help")
	}
	if _, err := o.mode(); err != nil {
		return err
	}
	if err := o.modelPath.validate(); err != nil {
		return err
	}
	if o.Mode.Groups < 0 {
		return usageErrorf("--groups must be positive")
	}
	if err := checkOutputFile("--output", o.Output); err != nil {
		return err
	}
	if !o.Verify {
		return nil
	}
	if o.VerifyBatch <= 0 {
		return usageErrorf("--verify-batch must be positive")
	}
	if err := checkRange("--verify-mean", o.Mean, math.Inf(-1), math.Inf(1), false); err != nil {
		return err
	}
	if err := checkRange("--verify-std", o.Std, 0, math.Inf(1), true); err != nil {
		return err
	}
	return o.global.validateSession()
}

func (o ablateOptions) jsonOutput() bool { return o.JSON }

type verifyResult struct {
	Inputs      int              `json:"inputs"`
	Source      string           `json:"source"`
	Differences []ort.Difference `json:"differences"`
	Tolerance   float64          `json:"tolerance,omitempty"`
	Passed      bool             `json:"passed"`
}

type ablateResult struct {
	Model    string        `json:"model"`
	Output   string        `json:"output"`
	Mode     onnxio.Mode   `json:"mode"`
	Layers   []string      `json:"layers"`
	Warnings []string      `json:"warnings"`
	Verify   *verifyResult `json:"verify,omitempty"`
	Written  bool          `json:"written"`
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// mode parses --mode.
func (o ablateOptions) mode() (onnxio.Mode, error) {
	mode, err := onnxio.ParseMode(o.ModeName)
	if err != nil {
		return "", usageErrorf("%v", err)
	}
	return mode, nil
}

func runAblate(_ context.Context, opts ablateOptions, out io.Writer) error {
	var err error
	if opts.Mode.Mode, err = opts.mode(); err != nil {
		return err
	}
	m, err := opts.global.loadModel(opts.Model)
	if err != nil {
		return err
	}
	var session ort.SessionOptions
	if opts.Verify {
		if session, err = opts.global.session(); err != nil {
			return err
		}
	}
	res, err := onnxio.Ablate(m, opts.Mode)
	if err != nil {
		return badInput(err)
	}
	r := ablateResult{Model: m.Name, Output: opts.Output, Mode: opts.Mode.Mode, Layers: res.Layers, Warnings: res.Warnings}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(opts.global.Stderr, "bnaudit: warning: "+onnxio.CleanMessage(w))
	}
	var verr error
	if opts.Verify {
		r.Verify, verr = verifyAblation(m, res.Model, session, opts)
		if verr == nil && !r.Verify.Passed {
			verr = checkFailedf("fold changed the outputs by %.3g relative (over %.0e); %s was not written", worstRelative(r.Verify.Differences), foldTolerance, opts.Output)
		}
	}
	if verr == nil {
		if err := res.Model.Save(opts.Output); err != nil {
			return err
		}
		r.Written = true
	}
	if opts.JSON {
		if err := writeJSON(out, r); err != nil {
			return err
		}
	} else {
		printAblation(out, r)
	}
	return verr
}

func worstRelative(ds []ort.Difference) float64 {
	w := 0.0
	for _, d := range ds {
		w = math.Max(w, d.Relative)
	}
	return w
}

func printAblation(w io.Writer, r ablateResult) {
	verb := map[onnxio.Mode]string{onnxio.ModeFold: "folded", onnxio.ModeRemove: "removed", onnxio.ModeFreeze: "froze", onnxio.ModeGroupNorm: "replaced"}[r.Mode]
	suffix := ""
	if r.Mode == onnxio.ModeGroupNorm {
		suffix = " with GroupNorm"
	}
	fmt.Fprintf(w, "%s %d BatchNorm layer(s) of %s%s\n", verb, len(r.Layers), clip(r.Model, 80), suffix)
	for _, l := range r.Layers {
		fmt.Fprintf(w, "  %s\n", clip(l, 100))
	}
	if v := r.Verify; v != nil {
		for _, d := range v.Differences {
			fmt.Fprintf(w, "verify: %d inputs (%s), output %s: max |diff| %.3g, relative %.3g\n", v.Inputs, v.Source, clip(d.Output, 40), d.MaxAbs, d.Relative)
		}
		if v.Tolerance > 0 {
			status := "ok"
			if !v.Passed {
				status = "FAILED"
			}
			fmt.Fprintf(w, "verify: fold tolerance %.0e relative: %s\n", v.Tolerance, status)
		}
	}
	if r.Written {
		fmt.Fprintf(w, "wrote %s\n", clip(r.Output, 200))
	}
}

// verifyAblation runs the original model in inference mode and the ablated
// one on the same inputs and compares their outputs.
func verifyAblation(orig, ablated *onnxio.Model, session ort.SessionOptions, opts ablateOptions) (*verifyResult, error) {
	evalModel, err := onnxio.EvalMode(orig)
	if err != nil {
		return nil, err
	}
	inName, x, source, err := verifyInputs(orig, opts)
	if err != nil {
		return nil, err
	}
	a, err := evalModel.Bytes()
	if err != nil {
		return nil, err
	}
	b, err := ablated.Bytes()
	if err != nil {
		return nil, err
	}
	diffs, err := ort.CompareModels(a, b, map[string]*ort.Tensor{inName: x}, session)
	if err != nil {
		return nil, err
	}
	v := &verifyResult{Inputs: int(x.Shape[0]), Source: source, Differences: diffs, Passed: true}
	if opts.Mode.Mode == onnxio.ModeFold {
		v.Tolerance = foldTolerance
		v.Passed = worstRelative(diffs) <= foldTolerance
	}
	return v, nil
}

// verifyInputs builds a batch for the model's one data input: images from an
// IDX file, normalized, or seeded standard normal values.
func verifyInputs(m *onnxio.Model, opts ablateOptions) (string, *ort.Tensor, string, error) {
	s, err := onnxio.Inspect(m)
	if err != nil {
		return "", nil, "", err
	}
	if len(s.Inputs) != 1 {
		return "", nil, "", usageErrorf("--verify needs a model with one data input; %s has %d", m.Name, len(s.Inputs))
	}
	in := s.Inputs[0]
	if in.Type != "float" {
		return "", nil, "", usageErrorf("--verify needs a float input; %q is %s", in.Name, in.Type)
	}
	if len(in.Shape) < 1 {
		return "", nil, "", usageErrorf("--verify needs a declared input shape; %q has none", in.Name)
	}
	n := opts.VerifyBatch
	shape := []int64{int64(n)}
	per := int64(1)
	for _, d := range in.Shape[1:] {
		var v int64
		if _, err := fmt.Sscan(d, &v); err != nil || v <= 0 {
			return "", nil, "", usageErrorf("--verify needs fixed non-batch dimensions; input %q has shape [%s]", in.Name, strings.Join(in.Shape, ","))
		}
		shape = append(shape, v)
		per *= v
	}
	data := make([]float32, int64(n)*per)
	if opts.VerifyData == "" {
		r := rand.New(rand.NewPCG(opts.Seed, 0x62_6e_61_75_64_69_74))
		for i := range data {
			data[i] = float32(r.NormFloat64())
		}
		return in.Name, ort.Float32Tensor(shape, data), fmt.Sprintf("random normal, seed %d", opts.Seed), nil
	}
	idx, err := dataset.ReadIDX(opts.VerifyData)
	if err != nil {
		return "", nil, "", err
	}
	sample := int64(1)
	for _, d := range idx.Dims[1:] {
		sample *= int64(d)
	}
	if sample != per {
		return "", nil, "", usageErrorf("--verify-data holds samples of %v values, but input %q takes [%s]", idx.Dims[1:], in.Name, strings.Join(in.Shape[1:], ","))
	}
	if idx.Dims[0] < n {
		return "", nil, "", usageErrorf("--verify-data holds %d samples, fewer than --verify-batch %d", idx.Dims[0], n)
	}
	// The pixels, scaled to [0, 1] and normalized as dataset.Normalization
	// says, by the data set's own batch copy.
	images, err := dataset.FromUint8(opts.VerifyData, shape[1:], idx.Data[:int64(n)*per], make([]int64, n))
	if err != nil {
		return "", nil, "", err
	}
	if images, err = images.WithNorm(dataset.Normalization{Mean: []float32{float32(opts.Mean)}, Std: []float32{float32(opts.Std)}}); err != nil {
		return "", nil, "", err
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	if err := images.Batch(all, data); err != nil {
		return "", nil, "", err
	}
	return in.Name, ort.Float32Tensor(shape, data), fmt.Sprintf("first %d samples of %s", n, clip(opts.VerifyData, 80)), nil
}
