package trainer

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
)

// Models of opsets before 13 are trained through an upgraded copy.

// graphOpset is the opset of the graphs the trainer writes. A model of an
// opset before onnxio.MinUpgradeTarget (13) is upgraded to it before any
// graph is built; models of opset 13 to 16 are read as they are, their
// nodes written at opset 17 unchanged.
const graphOpset = 17

// Upgrade returns the model the trainer builds its graphs from: m itself
// when its opset is 13 or later, otherwise a copy upgraded by
// onnxio.Upgrade to opset 17, the opset of the trainer's graphs, with the
// upgrade's report (nil when m is used as it is). Every graph builder
// calls it, so a caller needs it only to say once that a model was
// upgraded (UpgradeNote) or to train and save the upgraded model itself.
// A model that cannot be upgraded is refused with an error wrapping both
// onnxio.ErrCannotUpgrade and ErrUnsupported.
func Upgrade(m *onnxio.Model) (*onnxio.Model, *onnxio.UpgradeReport, error) {
	if m.Opset("") >= onnxio.MinUpgradeTarget {
		return m, nil, nil
	}
	up, rep, err := onnxio.Upgrade(m, graphOpset)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", err, ErrUnsupported)
	}
	return up, rep, nil
}

// UpgradeNote is the one line that says a model is trained through an
// upgraded copy ("" when rep is nil or did not upgrade).
func UpgradeNote(name string, rep *onnxio.UpgradeReport) string {
	if !rep.Upgraded() {
		return ""
	}
	return fmt.Sprintf("%s has opset %d; bnaudit builds its training and evaluation graphs from a copy it %s (the model file is unchanged)", name, rep.From, rep)
}
