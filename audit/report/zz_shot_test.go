package report
import "testing"
func TestShot(t *testing.T) {
	if err := Write("/tmp/rep", fixtureReport()); err != nil { t.Fatal(err) }
	if err := Write("/tmp/rep_hostile", hostileReport()); err != nil { t.Fatal(err) }
}
