package trainer

import "context"

// EvalProgress hears an evaluation's progress: samples done of total,
// after every batch, from the goroutine running the evaluation.
type EvalProgress func(done, total int)

type evalProgressKey struct{}

// WithEvalProgress returns a context under which Evaluate (and the
// evaluations built on it, such as a study's signals) report their
// progress to f. Progress is observation only: it does not change what is
// computed.
func WithEvalProgress(ctx context.Context, f EvalProgress) context.Context {
	return context.WithValue(ctx, evalProgressKey{}, f)
}

// evalProgressOf returns the context's progress hook, or nil.
func evalProgressOf(ctx context.Context) EvalProgress {
	f, _ := ctx.Value(evalProgressKey{}).(EvalProgress)
	return f
}
