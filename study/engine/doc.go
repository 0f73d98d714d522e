// Package engine runs a study's work units on the compute a user already
// has. A unit is one `bnaudit worker --work DIR --unit I` invocation; any
// engine that can start that command N times with I = 0…N−1 can run a
// study, and the gather afterwards reads only complete results from the
// shared work folder.
//
// Two cluster engines live here, neither a scheduler of bnaudit's own:
//
//   - Slurm: SlurmScript writes an sbatch script for one job array
//     (--array=LIST%P, CPUs, memory, time, partition, extra #SBATCH
//     lines); Slurm submits it with `sbatch --parsable` and follows the
//     array with squeue.
//   - Kubernetes: K8sJob builds a batch/v1 Indexed Job from the API types
//     (completionMode Indexed, one completion per unit, the unit from
//     JOB_COMPLETION_INDEX, the work folder as a ReadWriteMany volume),
//     and K8sManifest renders it as YAML for kubectl.
//
// The local engine (units in goroutines of one process) is the study
// package's own loop. This package is pure Go: it renders scripts and
// manifests and runs the scheduler's command-line clients.
package engine
