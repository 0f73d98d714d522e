package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	embedded "github.com/bnaudit/bnaudit"
	"github.com/bnaudit/bnaudit/internal/bundle"
)

// demo is compare with the bundled defaults: it takes compare's options and
// runs runCompare.
func demoCommand() *cli.Command {
	flags := compareFlags()
	// The bundled defaults: a Fashion-MNIST subset, MNIST digits as canaries,
	// the small CNN with BN, and a recipe that finishes in minutes on 2 cores.
	defaults := map[string]string{"data": embedded.BundleData, "ood": embedded.BundleCanaries, "output": "out/demo-report"}
	for _, f := range flags {
		switch sf := f.(type) {
		case *cli.StringFlag:
			if v, ok := defaults[sf.Name]; ok {
				sf.Value = v
			}
		case *cli.IntFlag:
			switch sf.Name {
			case "members":
				sf.Value = 1000
			case "non-members":
				sf.Value = 1000
			case "epochs":
				sf.Value = 15
			case "grad-checkpoints":
				sf.Value = 3
			case "grad-sample":
				sf.Value = 128
			}
		}
	}
	flags = append(flags, &cli.StringFlag{Name: "model", Value: embedded.BundleModel, Usage: "model to study"})
	return &cli.Command{
		Name:  "demo",
		Usage: "run compare on the bundled model and data (from any folder)",
		Description: "bnaudit compare on bundled defaults: the small CNN with BatchNorm (testdata/models), 1000 Fashion-MNIST\n" +
			"members and 1000 non-members (testdata/fashion-mnist), 50 MNIST digits inserted as canaries with random\n" +
			"labels and 50 held out (testdata/mnist-canaries), variants original, remove, freeze and groupnorm.\n" +
			"The model and data are embedded in the binary: where the default paths do not exist (outside the\n" +
			"repository) they are written once to $XDG_CACHE_HOME/bnaudit/bundle-HASH and read from there. The\n" +
			"report goes to --output, relative to the current folder.\n" +
			"Point --data at /usr/share/datasets/fashion-mnist and raise --members for the full data set.\n\n" + exitCodesHelp,
		Flags:        flags,
		OnUsageError: commandUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErrorf("demo takes no arguments (use --model); see bnaudit demo --help")
			}
			opts := readCompare(c)
			opts.modelPath = modelPath{Model: c.String("model"), nargs: 1}
			if err := useBundle(c, &opts); err != nil {
				return err
			}
			return act(c, opts, runCompare)
		},
	}
}

// useBundle points the model, data and canary paths that were left at
// their defaults and do not exist here (demo run outside the repository)
// at the binary's own copy, extracted once into the cache folder.
func useBundle(c *cli.Context, opts *compareOptions) error {
	var missing []*string
	for _, f := range []struct {
		flag string
		path *string
	}{{"model", &opts.Model}, {"data", &opts.Data}, {"ood", &opts.OOD}} {
		if c.IsSet(f.flag) {
			continue
		}
		if _, err := os.Stat(*f.path); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f.path)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cache, err := bundle.CacheDir()
	if err != nil {
		return badInput(err)
	}
	dir, err := bundle.Extract(embedded.Bundle(), cache)
	if err != nil {
		return err
	}
	for _, p := range missing {
		*p = filepath.Join(dir, filepath.FromSlash(*p))
	}
	fmt.Fprintf(opts.global.Stderr, "bnaudit: using the bundled model and data in %s\n", dir)
	return nil
}
