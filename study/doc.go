// Package study holds bnaudit's workflows that train and evaluate models:
// the BN comparison of a model's ablated variants (Compare), the audit of
// a trained, possibly third-party model (Audit), reference models for
// LiRA, RMIA and Feldman–Zhang (TrainReferences), the quantile-regression
// attack's regression model (AuditConfig.QMIA), inserted and held-out
// canaries (MakeCanaries, RelabeledCanaries, NoiseCanaries), and the
// caches of logits and gradient norms keyed by model and data hash.
//
// A study turns models and data into per-sample signals through package
// trainer on ONNX Runtime (onnxio/ort) and hands those arrays to package
// audit, whose pure statistics compute every attack, interval and
// verdict; the result is an audit.Report that audit/report renders.
//
// Imports point down: study uses audit, trainer, trainer/dataset, onnxio
// and onnxio/ort; nothing below imports study.
package study
