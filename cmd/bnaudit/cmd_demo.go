package main

import (
	"github.com/urfave/cli/v2"
)

// demo is compare with the bundled defaults: it takes compare's options and
// runs runCompare.
func demoCommand() *cli.Command {
	flags := compareFlags()
	// The bundled defaults: a Fashion-MNIST subset, MNIST digits as canaries,
	// the small CNN with BN, and a recipe that finishes in minutes on 2 cores.
	defaults := map[string]string{"data": "testdata/fashion-mnist", "ood": "testdata/mnist-canaries", "output": "out/demo-report"}
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
	flags = append(flags, &cli.StringFlag{Name: "model", Value: "testdata/models/small_cnn.training.onnx", Usage: "model to study"})
	return &cli.Command{
		Name:  "demo",
		Usage: "run compare on the bundled model and data (from the repository root)",
		Description: "bnaudit compare on bundled defaults: the small CNN with BatchNorm (testdata/models), 1000 Fashion-MNIST\n" +
			"members and 1000 non-members (testdata/fashion-mnist), 50 MNIST digits inserted as canaries with random\n" +
			"labels and 50 held out (testdata/mnist-canaries), variants original, remove, freeze and groupnorm.\n" +
			"Point --data at /usr/share/datasets/fashion-mnist and raise --members for the full data set.\n\n" + exitCodesHelp,
		Flags:        flags,
		OnUsageError: commandUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErrorf("demo takes no arguments (use --model); see bnaudit demo --help")
			}
			opts := readCompare(c)
			opts.modelPath = modelPath{Model: c.String("model"), nargs: 1}
			return act(c, opts, runCompare)
		},
	}
}
