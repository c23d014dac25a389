"""The nightly: per set lock, build and push, hold-backs, commit-only, publishing, git and
GitHub, the report and re-validation.  Imports every stage beneath it, never the CLI."""
