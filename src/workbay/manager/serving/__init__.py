"""The pure core of model serving (docs/serving.md): model definitions, runtime variants, the
reconciler's and the autoscaler's decisions.  No I/O, no database, no services (import-linter)."""
