package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// globalFlags apply to every command. They may be written before or after
// the command name.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ort-lib", Usage: "path of the ONNX Runtime shared library (else $" + ort.LibraryEnv + ", then the install location of scripts/install-ort.sh, then system paths)"},
		&cli.IntFlag{Name: "threads", Value: 0, Usage: "ONNX Runtime intra-op threads (0: ONNX Runtime's default)"},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda (needs a GPU build of ONNX Runtime)"},
		&cli.Int64Flag{Name: "max-model-bytes", Value: onnxio.DefaultLimits().MaxFileBytes, Usage: "refuse model files larger than this"},
	}
}

// limits reads the model-size flags.
func limits(c *cli.Context) onnxio.Limits {
	lim := onnxio.DefaultLimits()
	if v := c.Int64("max-model-bytes"); v > 0 {
		lim.MaxFileBytes = v
	}
	return lim
}

// sessionOptions reads the ONNX Runtime flags and initializes the runtime.
func sessionOptions(c *cli.Context) (ort.SessionOptions, error) {
	opts := ort.SessionOptions{Threads: c.Int("threads"), Device: c.String("device")}
	if opts.Threads < 0 {
		return opts, usageErrorf("--threads must be 0 or more")
	}
	if opts.Device != "cpu" && opts.Device != "cuda" {
		return opts, usageErrorf("--device must be cpu or cuda, not %q", opts.Device)
	}
	if err := ort.Init(c.String("ort-lib")); err != nil {
		return opts, err
	}
	return opts, nil
}

// loadModel loads the command's one MODEL argument.
func loadModel(c *cli.Context) (*onnxio.Model, error) {
	if c.NArg() != 1 {
		return nil, usageErrorf("%s needs exactly one MODEL argument (got %d); see bnaudit %s --help", c.Command.Name, c.NArg(), c.Command.Name)
	}
	return onnxio.LoadWithLimits(c.Args().First(), limits(c))
}

// reorderArgs lets flags follow positional arguments (`bnaudit ablate
// MODEL --mode fold`), which urfave/cli v2 does not parse by itself: it moves
// the command's flags before its arguments and global flags before the
// command name. Everything after "--" stays as it is.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	takesValue := map[string]bool{}
	global := map[string]bool{}
	local := map[string]bool{}
	note := func(flags []cli.Flag, set map[string]bool) {
		for _, f := range flags {
			_, isBool := f.(*cli.BoolFlag)
			for _, n := range f.Names() {
				takesValue[n] = !isBool
				set[n] = true
			}
		}
	}
	note(app.Flags, global)
	flagName := func(a string) string {
		n := strings.TrimLeft(a, "-")
		if k := strings.IndexByte(n, '='); k >= 0 {
			n = n[:k]
		}
		return n
	}
	isFlag := func(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }
	var globals []string
	i := 1
	for ; i < len(args) && isFlag(args[i]); i++ {
		globals = append(globals, args[i])
		if takesValue[flagName(args[i])] && !strings.Contains(args[i], "=") && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	if i >= len(args) {
		return args
	}
	cmdStart := i
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	// Descend into a subcommand (`train export`).
	for i+1 < len(args) {
		sub := cmd.Command(args[i+1])
		if sub == nil {
			break
		}
		i++
		cmd = sub
	}
	note(cmd.Flags, local)
	var flags, pos []string
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			pos = append(pos, args[j:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		group := []string{a}
		name := flagName(a)
		if takesValue[name] && !strings.Contains(a, "=") && j+1 < len(args) {
			j++
			group = append(group, args[j])
		}
		if global[name] && !local[name] {
			globals = append(globals, group...)
		} else {
			flags = append(flags, group...)
		}
	}
	out := append([]string{args[0]}, globals...)
	out = append(out, args[cmdStart:i+1]...)
	out = append(out, flags...)
	return append(out, pos...)
}
