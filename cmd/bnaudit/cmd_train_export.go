package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
)

func trainExportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a model's training step (forward, loss, backward, optimizer) and evaluation graphs as ONNX",
		ArgsUsage: "MODEL",
		Description: "Writes three files (see the README's \"training-step contract\" for every input and output):\n" +
			"  OUT                the training step: inputs data, labels, lr, step, P, P.m[, P.v], S;\n" +
			"                     outputs loss, loss_per_sample, logits, P.next, slots .next, S.next, step.next[, P.grad]\n" +
			"  OUT.eval.onnx      the evaluation graph: BN on running statistics; outputs logits, loss_per_sample, loss\n" +
			"  OUT.state.onnx     the starting values: the model with its weights (re-drawn with --init scratch)\n" +
			"A model of an opset before 13 is upgraded to opset 17 first (the output says so); OUT.state.onnx is then\n" +
			"the upgraded model.\n" +
			"The graphs use only standard ONNX ops, so any ONNX Runtime, in any language, can run them.\n\n" + exitCodesHelp,
		Flags: append(append([]cli.Flag{
			outputFlag("where to write the step graph (required)"),
			&cli.IntFlag{Name: "batch", Value: 128, Usage: "batch size the graphs are built for"},
		}, optimizerFlags()...),
			labelSmoothingFlag(),
			&cli.BoolFlag{Name: "with-grads", Usage: "also output each parameter's gradient as P.grad"},
			initFlag(string(trainer.InitPretrained)),
			seedFlag("seed of --init scratch"),
			jsonFlag("print the graphs' interface as JSON"),
		),
		OnUsageError: commandUsageError,
		Action:       jsonAction(readTrainExport, runTrainExport),
	}
}

func readTrainExport(c *cli.Context) trainExportOptions {
	return trainExportOptions{global: readGlobal(c), modelPath: readModelPath(c), Output: c.String("output"), Init: c.String("init"), Seed: c.Uint64("seed"), JSON: c.Bool("json"),
		Batch: c.Int("batch"), Optimizer: readOptimizer(c), LabelSmoothing: c.Float64("label-smoothing"), WithGrads: c.Bool("with-grads")}
}

// trainExportOptions are the options of train export.
type trainExportOptions struct {
	global globalOptions
	modelPath
	Output         string
	Init           string
	Seed           uint64
	JSON           bool
	Batch          int
	Optimizer      optimizerOptions
	LabelSmoothing float64
	WithGrads      bool
}

func (o trainExportOptions) validate() error {
	if o.Output == "" {
		return usageErrorf("train export needs --output; see bnaudit train export --help")
	}
	if err := o.modelPath.validate(); err != nil {
		return err
	}
	if _, err := o.step(); err != nil {
		return err
	}
	if err := checkLabelSmoothing(o.LabelSmoothing); err != nil {
		return err
	}
	return checkOutputFile("--output", o.Output)
}

func (o trainExportOptions) jsonOutput() bool { return o.JSON }

// step returns the step graph's configuration and the initialization.
func (o trainExportOptions) step() (trainer.StepConfig, error) {
	if _, err := parseInit(o.Init); err != nil {
		return trainer.StepConfig{}, err
	}
	opt, err := o.Optimizer.build()
	if err != nil {
		return trainer.StepConfig{}, err
	}
	if o.Batch <= 0 {
		return trainer.StepConfig{}, usageErrorf("--batch must be positive")
	}
	return trainer.StepConfig{Batch: o.Batch, Optimizer: opt, LabelSmoothing: float32(o.LabelSmoothing), WithGrads: o.WithGrads}, nil
}

type exportResult struct {
	Step       string             `json:"step"`
	Eval       string             `json:"eval"`
	State      string             `json:"state"`
	Batch      int                `json:"batch"`
	Optimizer  trainer.Optimizer  `json:"optimizer"`
	Input      string             `json:"input"`
	Logits     string             `json:"logits"`
	Params     []string           `json:"params"`
	Stats      []string           `json:"stats"`
	Slots      []string           `json:"slots"`
	Masks      map[string]float32 `json:"dropout_masks"`
	Nodes      int                `json:"step_nodes"`
	Parameters int64              `json:"parameters"`
	// UpgradedFrom is the model's opset when it was upgraded for the
	// export (trainer.Upgrade), omitted otherwise.
	UpgradedFrom int64 `json:"upgraded_from_opset,omitempty"`
}

// siblingPath turns step.onnx into step.<kind>.onnx.
func siblingPath(out, kind string) string {
	ext := filepath.Ext(out)
	return strings.TrimSuffix(out, ext) + "." + kind + ext
}

func runTrainExport(_ context.Context, opts trainExportOptions, w io.Writer) error {
	cfg, err := opts.step()
	if err != nil {
		return err
	}
	m, err := opts.global.loadModel(opts.Model)
	if err != nil {
		return err
	}
	// A model of an opset before 13 is exported upgraded: the state file
	// holds the upgraded model, whose initializers the step graph reads.
	state, up, err := trainer.Upgrade(m)
	if err != nil {
		return badInput(err)
	}
	if opts.Init == string(trainer.InitScratch) {
		if state, _, err = trainer.Initialize(state, opts.Seed); err != nil {
			return err
		}
	}
	step, err := trainer.BuildStep(state, cfg)
	if err != nil {
		return badInput(err)
	}
	eval, err := trainer.BuildEval(state, cfg.Batch)
	if err != nil {
		return badInput(err)
	}
	r := exportResult{Step: opts.Output, Eval: siblingPath(opts.Output, "eval"), State: siblingPath(opts.Output, "state"),
		Batch: cfg.Batch, Optimizer: cfg.Optimizer, Input: step.Input, Logits: step.Logits,
		Params: step.Params, Stats: step.Stats, Slots: step.Slots, Masks: step.MaskRatios, Nodes: len(step.Model.Graph().GetNode())}
	for _, p := range step.Params {
		r.Parameters += numel(step.Shapes[p])
	}
	if up.Upgraded() {
		r.UpgradedFrom = up.From
	}
	// The three files appear together or not at all.
	if err := saveModels(map[string]*onnxio.Model{r.State: state, r.Eval: eval.Model, r.Step: step.Model}); err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "training step  %s (%d nodes, batch %d, %s)\n", r.Step, r.Nodes, r.Batch, r.Optimizer.Kind)
	fmt.Fprintf(w, "evaluation     %s\n", r.Eval)
	fmt.Fprintf(w, "initial state  %s\n", r.State)
	if r.UpgradedFrom > 0 {
		fmt.Fprintf(w, "opset          %s\n", clip(up.String(), 200))
	}
	fmt.Fprintf(w, "parameters     %d in %d tensors; %d BatchNorm statistics; optimizer slots %v\n", r.Parameters, len(r.Params), len(r.Stats), r.Slots)
	if len(r.Masks) > 0 {
		fmt.Fprintf(w, "dropout masks  %d inputs (feed Bernoulli(1−p) 0/1 masks of the data's shape)\n", len(r.Masks))
	}
	return nil
}

func numel(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// saveModel writes one model; tests replace it to fail a write.
var saveModel = (*onnxio.Model).Save

// saveModels writes models (by path) as a set: each to a temporary file
// beside its path, then, once all are written, renamed into place. On
// failure nothing of the set is left: the temporary files and any file
// already renamed are removed.
func saveModels(models map[string]*onnxio.Model) (err error) {
	tmps := map[string]string{}
	var placed []string
	defer func() {
		if err == nil {
			return
		}
		for _, t := range tmps {
			os.Remove(t)
		}
		for _, p := range placed {
			os.Remove(p)
		}
	}()
	paths := slices.Sorted(maps.Keys(models))
	for _, p := range paths {
		f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".part-*")
		if err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		f.Close()
		tmps[p] = f.Name()
		if err := saveModel(models[p], f.Name()); err != nil {
			return err
		}
	}
	for _, p := range paths {
		if err := os.Rename(tmps[p], p); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		delete(tmps, p)
		placed = append(placed, p)
	}
	return nil
}
