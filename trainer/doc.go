// Package trainer will hold bnaudit's training graphs (reverse-mode
// autodiff over ONNX, losses, optimizers, initialization) and the training
// loop (issues 3 and 4). Today only its subpackage dataset exists, which
// reads IDX data files.
package trainer
