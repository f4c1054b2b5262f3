//! `dcos fastdata`: the DC/OS CLI plugin.
//!
//! Will own: the `status`, `scaling get|set` and `decisions` subcommands, the DC/OS plugin
//! conventions (`--info`, `--version`, `--config-schema`), and finding the cluster URL and
//! token the way the DC/OS CLI passes them. It talks HTTP to the scheduler's REST API only and
//! carries none of the scheduler's dependencies.
