// Package dataset holds the labelled data sets bnaudit trains and audits on.
//
// A Dataset keeps its samples in memory as uint8 (images) or float32, with
// one int64 label per sample and a per-channel Normalization that Batch
// applies while it copies samples into a model's input buffer:
//
//	x = (raw/255 − mean[c]) / std[c]   for uint8 data
//	x = (raw − mean[c]) / std[c]       for float32 data
//
// The channel c is the first axis of the sample shape. Images are stored as
// [C, H, W]; a 2-D image gets C = 1. A 1-D sample (a feature vector) has one
// channel per feature. The identity normalization, {Mean: [0], Std: [1]},
// maps uint8 pixels to raw/255 in [0, 1] and leaves float32 data unchanged.
//
// Load reads the formats bnaudit accepts:
//
//   - IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.): a folder
//     holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-… (each
//     possibly gzip-compressed), or one images file with its labels file
//     beside it;
//   - NumPy .npz archives holding arrays x (uint8 or float32, [N, …]) and y
//     (integers, [N]);
//   - image folders with one subfolder of PNG or JPEG files per class.
//
// LoadIndex reads lists of sample indices (text or .npy).
//
// Every error about the content of a file wraps ErrBadData, is one line, and
// names the file and, where it applies, the sample.
package dataset
