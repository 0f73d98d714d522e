// Package audit will hold bnaudit's signals, membership-inference attacks,
// metrics, memorization scores and reports (issue 5). It has no code yet.
package audit
