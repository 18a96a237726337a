//! One module per subcommand: each has clap `Args` and `run(Args) -> Result<Outcome>`.

pub mod analyze;
pub mod annotations;
pub mod compare;
pub mod evaluate;
pub mod inspect;
pub mod merge;
pub mod preprocess;
pub mod report;
