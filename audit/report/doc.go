// Package report writes an audit.Report to disk in the forms people and
// programs read:
//
//   - report.json: the Report as indented JSON (schema bnaudit.report/v1).
//     NaN and ±Inf, which JSON cannot hold, are written as null; ReadJSON
//     reads such a file back and turns a null number into NaN.
//   - report.md: the summary for a terminal or a pull request (also
//     available as WriteMarkdown): the verdict first, one row per variant,
//     the BN-versus-no-BN differences, every attack (with the attack on
//     subsets, and the five members most exposed to it for the first
//     variant that lists them), notes and definitions.
//   - report.html: one self-contained page (inline CSS and inline SVG plots,
//     no script, no external asset) with the same content plus plots:
//     log-log ROC curves, gradient-norm histograms and ratios along
//     training, canary memorization (accuracy and loss gaps), histograms
//     of the Feldman–Zhang memorization scores (overlaid across variants
//     in a comparison), and the variants side by side; each attack's
//     balanced accuracy with its interval; every variant's most exposed
//     members (up to ten) with their loss.
//   - scores.csv: one row per sample of Report.Samples with whether the
//     model classifies it correctly and every attack's score, for
//     spreadsheets; columns are meant to be found by header name.
//   - signals.npz: NumPy arrays (index, label, member, canary, correct
//     when known for every sample, phi, loss, reference models' φ and IN
//     masks, one score_<attack> per attack) so that anyone can recompute
//     the attacks with their own code.
//
// Write renders everything in memory first and then writes each file
// atomically (a temporary file renamed into place), so a reader never sees
// a half-written file and a failed render leaves the folder as it was.
//
// Numbers are formatted as "estimate [lo, hi]" with three decimals
// ("0.544 [0.536, 0.551]"), four when all three are below 0.01 ("0.0042
// [0.0018, 0.0071]") and fewer from 10 up ("39.20 [35.40, 44.01]"); a
// number that could not be measured (NaN) reads "n/a". Every string that comes from the data (model
// names and paths, variant names, notes) is escaped: backslash escapes in
// Markdown, HTML escaping in report.html and in its SVG text.
package report
