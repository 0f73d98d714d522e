package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/onnxio"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a model: interface, ops, parameters, BatchNorm layers, warnings",
		ArgsUsage: "MODEL",
		Description: "Reads MODEL (an .onnx file), checks it, and prints its opset, IR version, inputs\n" +
			"and outputs, op counts, parameter count, a table of its BatchNormalization layers\n" +
			"(channels, eps, momentum, mode, where statistics and affine come from, the layer\n" +
			"before it and whether BN can be folded into it) and warnings.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			jsonFlag("print JSON (errors too, as {\"error\": ...})"),
		},
		OnUsageError: commandUsageError,
		Action: func(c *cli.Context) error {
			opts := inspectOptions{global: readGlobal(c), modelPath: readModelPath(c), JSON: c.Bool("json")}
			if err := opts.validate(); err != nil {
				return opts.fail(c.App.Writer, err)
			}
			return runInspect(c.Context, opts, c.App.Writer)
		},
	}
}

// inspectOptions are the options of inspect.
type inspectOptions struct {
	global globalOptions
	modelPath
	JSON bool
}

// fail returns err, and with --json first prints it as JSON with its exit code.
func (o inspectOptions) fail(out io.Writer, err error) error {
	if o.JSON {
		writeJSONError(out, err)
	}
	return err
}

func runInspect(_ context.Context, o inspectOptions, out io.Writer) error {
	m, err := o.global.loadModel(o.Model)
	if err != nil {
		return o.fail(out, err)
	}
	s, err := onnxio.Inspect(m)
	if err != nil {
		return o.fail(out, err)
	}
	if o.JSON {
		return writeJSON(out, s)
	}
	printSummary(out, s)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clip makes a name read from a file safe and short enough for a table.
func clip(s string, n int) string {
	s = onnxio.CleanMessage(s)
	if len([]rune(s)) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}

func printSummary(w io.Writer, s *onnxio.Summary) {
	fmt.Fprintf(w, "model      %s\n", clip(s.File, 80))
	fmt.Fprintf(w, "producer   %s %s, IR version %d, opsets %s\n", clip(s.Producer, 40), clip(s.ProducerVersion, 20), s.IRVersion, formatOpsets(s.Opsets))
	for _, v := range s.Inputs {
		fmt.Fprintf(w, "input      %s %s [%s]\n", clip(v.Name, 60), v.Type, clip(strings.Join(v.Shape, ","), 60))
	}
	for _, v := range s.Outputs {
		fmt.Fprintf(w, "output     %s %s [%s]\n", clip(v.Name, 60), v.Type, clip(strings.Join(v.Shape, ","), 60))
	}
	fmt.Fprintf(w, "parameters %d in %d tensors (+ %d BatchNorm running statistics)\n", s.Parameters, s.ParameterTensors, s.Buffers)
	fmt.Fprintf(w, "nodes      %d: %s\n", s.Nodes, formatOps(s.OpCounts))
	if len(s.BatchNorms) > 0 {
		fmt.Fprintf(w, "\nBatchNorm layers: %d\n", len(s.BatchNorms))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tname\tchannels\teps\tmomentum\tmode\tstats/affine\tafter\tfoldable")
		for _, b := range s.BatchNorms {
			mode := "inference"
			if b.TrainingMode {
				mode = "training"
			}
			if b.Frozen {
				mode += ",frozen"
			}
			ch := "?"
			if b.Channels >= 0 {
				ch = fmt.Sprint(b.Channels)
			}
			after := b.ProducerKind
			if b.Producer != "" {
				after += " " + clip(b.Producer, 40)
			}
			fold := "yes"
			if !b.Foldable {
				fold = "no"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%g\t%g\t%s\t%s\t%s\t%s\n", b.Index, clip(b.Name, 50), ch, b.Epsilon, b.Momentum, mode, sources(b), after, fold)
		}
		tw.Flush()
	}
	if len(s.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, x := range s.Warnings {
			fmt.Fprintf(w, "  - %s\n", clip(x, 400))
		}
	}
}

// sources abbreviates where scale, bias, mean and var come from.
func sources(b onnxio.BatchNorm) string {
	all := true
	for _, s := range []onnxio.Source{b.Scale, b.Bias, b.Mean, b.Var} {
		if s.Kind != "initializer" {
			all = false
		}
	}
	if all {
		return "initializers"
	}
	return fmt.Sprintf("%s/%s/%s/%s", b.Scale.Kind, b.Bias.Kind, b.Mean.Kind, b.Var.Kind)
}

func formatOpsets(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", clip(k, 30), m[k])
	}
	return strings.Join(parts, ", ")
}

func formatOps(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", clip(k, 40), m[k])
	}
	return strings.Join(parts, ", ")
}
